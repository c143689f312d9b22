"""`dlib-resnet`: dlib's face recognition ResNet, the model behind the `face_recognition` library; an external entry.

Its weights are dlib's own file `dlib_face_recognition_resnet_model_v1.dat`, read at run time from the installed
PyPI package `face-recognition-models` 0.3.0 (`pip install 'facebench[real]'`), checked against its sha256 pinned
in `bench/data/real/dlib_format.py` (`PINNED_SHA256`, with the landmark predictors') and converted in memory
by `models_zoo.external.dlib_resnet:build_dlib_resnet` (dlib's serialization read in
plain Python; nothing is unpickled, nothing is copied into the repository). The builder's network takes a 150x150
RGB chip in [0, 1] and returns dlib's 128-d descriptor; facebench resizes its images to 150 px inside the forward
and L2-normalises the descriptor (FR models are scored by cosine similarity).
"""
from bench.data.real.dlib_format import PINNED_SHA256
from bench.external import ExternalWeights, NativeThreshold
from bench.modelref import InputConvention
from models_zoo.registry import register_external

NATIVE_DISTANCE = 0.6
UNIT_NORM_COSINE = 1 - NATIVE_DISTANCE ** 2 / 2  # |a - b|^2 = 2 - 2 cos(a, b) for unit vectors

DLIB_RESNET = ExternalWeights(
    distribution="face-recognition-models",
    version="0.3.0",
    file="face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
    sha256=PINNED_SHA256["dlib_face_recognition_resnet_model_v1.dat"],
    builder="models_zoo.external.dlib_resnet:build_dlib_resnet",
    convention=InputConvention(size=150),  # the builder applies dlib's own input normalisation
    origin="dlib (Davis King): dlib_face_recognition_resnet_model_v1, the network of the face_recognition library "
           "(about 99.4 % on LFW by its authors), shipped in the PyPI package face-recognition-models 0.3.0",
    licence="CC0 1.0 (the package's LICENSE file; its setup.py metadata says MIT)",
    input="a 150x150 RGB face chip aligned by dlib's 5-point landmarks (dlib's get_face_chip); facebench resizes the "
          "run's images to 150 px inside the forward, so budgets stay at the protocol's resolution",
    parameters=5_607_488,  # counted on the network built from the pinned file (tests/test_dlib_reference.py)
    native_threshold=NativeThreshold(
        NATIVE_DISTANCE, "same person when the Euclidean distance of the raw 128-d descriptors is below",
        f"facebench scores the cosine similarity of the L2-normalised descriptors; for unit-norm descriptors distance "
        f"{NATIVE_DISTANCE:g} is cosine {UNIT_NORM_COSINE:.2f}, and dlib's descriptors are not normalised, so the two "
        "rules agree only roughly"),
)

register_external(
    "dlib-resnet",
    task="fr",
    description="dlib's face recognition ResNet (29 convolutions, 128-d descriptor), the model of the face_recognition "
                "library; external weights (face-recognition-models 0.3.0), not trained by facebench",
    input_size={"tiny": 64, "paper": 160},  # the FR protocols' resolution per profile, like the zoo's FR models
    default_protocol="synth-fr",
    citation="King. Dlib-ml: A Machine Learning Toolkit. JMLR 10, 2009 (model: dlib-models, "
             "dlib_face_recognition_resnet_model_v1)",
    external=DLIB_RESNET,
)
