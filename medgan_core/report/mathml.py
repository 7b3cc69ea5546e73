"""LaTeX in markdown cells -> MathML, so formulas render with no network.

nbconvert's HTML normally loads MathJax from a CDN; opened offline, every formula would stay
raw ``$...$`` TeX. We convert the TeX of markdown cells to MathML at render time with
``latex2mathml``; every modern browser displays MathML natively, so a report is one
self-contained file (no script, font or style to fetch).

Math is swapped for placeholder tokens *before* markdown is rendered (so markdown never
touches the TeX or the MathML) and the tokens are replaced by MathML in the final HTML.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

# `$$...$$` (display, may span lines) or `$...$` (inline, one line); `\$` is a literal dollar.
_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$(?!\d)", re.S)
# Fenced code blocks and inline code spans are left alone.
_CODE = re.compile(r"```.*?```|~~~.*?~~~|`[^`\n]+`", re.S)
_XMLNS = re.compile(r'\s+xmlns="[^"]*"')


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """Convert one TeX formula to a MathML element.

    Args:
        tex: the formula without its dollar delimiters.
        display: block (``$$``) rather than inline (``$``) math.

    Returns:
        ``<math ...>...</math>``; if the TeX cannot be converted, the TeX itself in a
        ``<code class="tex-error">`` so that the report still renders and shows the problem.
    """
    try:
        out = convert(tex.strip(), display="block" if display else "inline")
    except Exception as err:  # latex2mathml raises several exception types for bad TeX
        return f'<code class="tex-error" title="{html.escape(str(err))}">{html.escape(tex)}</code>'
    out = _XMLNS.sub("", out, count=1)  # HTML5 needs no namespace; keeps reports free of URLs
    out = out.replace("<math ", f'<math alttext="{html.escape(tex.strip(), quote=True)}" ', 1)
    return out


def protect_math(source: str, store: dict[str, str]) -> str:
    """Replace every formula of a markdown ``source`` by a placeholder token.

    Args:
        source: markdown text.
        store: filled with ``token -> MathML``; pass the same dict to :func:`restore_math`.

    Returns:
        The markdown with tokens in place of the formulas (code spans untouched).
    """
    pieces: list[str] = []
    last = 0
    for code in _CODE.finditer(source):
        pieces.append(_swap(source[last:code.start()], store))
        pieces.append(code.group(0))
        last = code.end()
    pieces.append(_swap(source[last:], store))
    return "".join(pieces)


def _swap(text: str, store: dict[str, str]) -> str:
    def repl(match: re.Match) -> str:
        display = match.group(1) is not None
        tex = match.group(1) if display else match.group(2)
        token = f"MEDGANMATH{len(store):05d}X"
        mathml = tex_to_mathml(tex, display=display)
        store[token] = f'<div class="math-display">{mathml}</div>' if display else mathml
        return token

    return _MATH.sub(repl, text)


def restore_math(html_text: str, store: dict[str, str]) -> str:
    """Put the MathML back where :func:`protect_math` left tokens.

    Args:
        html_text: rendered HTML containing tokens.
        store: the dict filled by :func:`protect_math`.
    """
    if not store:
        return html_text
    # A display formula alone in a paragraph is rendered as <p>TOKEN</p>; drop the <p>.
    for token, mathml in store.items():
        html_text = html_text.replace(f"<p>{token}</p>", mathml).replace(token, mathml)
    return html_text
