"""Platform profiles: what TensorFlow computes depends on the CPU it runs on.

TF's CPU kernels are chosen at run time.  With oneDNN on (TF's default on
x86 Linux CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX:
``DefaultOneDnnPolicy`` in ``tensorflow/core/util/port.cc``;
``TF_ENABLE_ONEDNN_OPTS`` overrides it) an op takes a oneDNN kernel where
oneDNN has one for the dtype *on this CPU*, and Eigen's kernel otherwise.
oneDNN takes float16 only where ``IsDataTypeSupportedByOneDNNOnThisCPU``
(``tensorflow/core/util/util.cc``) says so: AVX512BW with AVX512_FP16 or
AMX_FP16, or AVX_NE_CONVERT (Sapphire Rapids and later Xeons; never on ARM,
where ``TestCPUFeature`` is false for these).  The graph pass that swaps in
the oneDNN op checks it (``IsMklOp`` in ``tensorflow/core/graph/
mkl_graph_util.h``; eager ops run as one-op functions and take that pass
too), and so does grappler's remapper (``IsCpuCompatibleDataType`` in
``tensorflow/core/grappler/optimizers/remapper.cc``).  float16 oneDNN
softmax and fused matmul came with TF 2.16 (tensorflow PR #62648): TF
2.15.1, tfa's, has neither.  So one float16 layer computes two sets of
numbers on two CI runners, and a claim "bitwise TF" holds per profile,
never for all.

A :class:`Profile` names one such set of semantics.  Each is a few flags that
the families read; everything here is measured, not assumed
(``parity_tests/test_platforms.py`` replays the recordings under
``fixtures/platforms/``, and the float16 live tests run on this machine with
oneDNN on and off):

``half_softmax``
    ``"eigen"``: ``tf.nn.softmax`` on float16 op by op in half
    (``softmax_op_functor.h``; :func:`lstm_ref.activations.softmax`).
    ``"onednn"``: oneDNN's softmax, which computes in float32 and rounds once
    to float16 (:func:`lstm_ref.activations.softmax_rounded_once`): bitwise
    on all 63,488 finite float16 inputs, rows of 4 and of 62 (TF 2.21, Xeon
    with AVX512-FP16).  ``log_softmax`` stays Eigen's on both.
``half_graph_bias``
    What a *grappler-optimised graph* (a ``tf.function``, a TF1 session)
    does with float16 ``MatMul`` then ``BiasAdd``.  ``"rounded"``: the
    MatMul rounds its float32 accumulation to half and the bias is added in
    half (eager, grappler off, or no oneDNN half kernel).  ``"fused"``:
    grappler's remapper fuses the pair into one oneDNN matmul whose bias is
    added in float32 before the one rounding (measured: 100% of one-step
    values bitwise against 73-77% unfused, ``sweep_contrib_10``).  Only the
    contrib cell's oracle runs such a graph (it is a TF1 cell: it never ran
    eagerly); the other workers run eagerly or with grappler off.

A profile is decided from the CPU's features and ``TF_ENABLE_ONEDNN_OPTS``
(:func:`detect`); the default is the machine you run on.  Name another with
``LSTM_PARITY_PLATFORM``, ``--platform`` on the command line, or
``platform=`` in :func:`lstm_ref.from_config`, to see what TF computes there.
The profiles were measured with TF 2.21 (and TF 2.15.1 for tfa); a
recording from another TF version is refused (``lstm_ref.harness.platforms``).
"""

import os
import platform as _platform
from dataclasses import dataclass

from .errors import ConfigError

ENV_VAR = "LSTM_PARITY_PLATFORM"


class PlatformError(ConfigError):
    """An unknown profile name, or a recording that cannot be used."""


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    half_softmax: str = "eigen"  # "eigen" | "onednn"
    half_graph_bias: str = "rounded"  # "rounded" | "fused"
    # Whose measured claims (tolerances.FLOAT16_*_ULPS) hold here: the
    # profile's own name once measured, another's as a hypothesis.
    claims: str = ""
    verified: str = ""  # what proves it; "" for a profile on paper

    def __str__(self):
        return self.name


PROFILES = {
    p.name: p
    for p in (
        Profile(
            "x86-eigen",
            "x86-64 without AVX512-FP16, or TF_ENABLE_ONEDNN_OPTS=0: float16 ops in Eigen, op by op in half",
            claims="x86-eigen",
            verified="live on AMD EPYC (the committed goldens) and on a Xeon with TF_ENABLE_ONEDNN_OPTS=0",
        ),
        Profile(
            "x86-onednn-fp16",
            "x86-64 with AVX512-FP16 (or AMX-FP16, AVX-NE-CONVERT) and oneDNN on (TF's default): float16 "
            "softmax and graph-mode MatMul+BiasAdd in oneDNN, in float32 rounded once",
            half_softmax="onednn",
            half_graph_bias="fused",
            claims="x86-onednn-fp16",
            verified="live on a Xeon with AVX512-FP16, and its recording (fixtures/platforms/avx512fp16-xeon)",
        ),
        # On paper, unrecorded.  TF's aarch64 wheels build oneDNN with the Arm
        # Compute Library (on by default on Neoverse V1 only: port.cc), but
        # never for float16 (above), so the oneDNN half kernels cannot
        # apply.  Eigen's NEON half packets (Packet8hf, Eigen/src/Core/arch/
        # NEON/PacketMath.h) would compute natively in half, with pmadd a
        # fused multiply-add rounding once (vfmaq_f16), but only in builds
        # with ARMv8.2-A FP16 vector arithmetic; TF's release wheels are
        # built for armv8-a (.bazelrc), which converts through float as on
        # x86.  Transcendentals (tanh, exp) are other polynomials there, so
        # the x86 ulp tables are the hypothesis, not a claim.  PyTorch's
        # fast-math (ONEDNN_DEFAULT_FPMATH_MODE=BF16, float32 GEMMs in
        # bfloat16) is off by default.  Until a recording says otherwise,
        # Eigen's x86 semantics are the hypothesis (``claims``);
        # ``make record-platform`` on an ARM runner tests it.
        Profile(
            "aarch64",
            "aarch64 (unrecorded): assumed Eigen's x86 float16 semantics until a recording is replayed",
            claims="x86-eigen",
        ),
    )
}


def onednn_enabled(setting=None, machine=None) -> bool:
    """TF's reading of ``TF_ENABLE_ONEDNN_OPTS``: a false value turns oneDNN
    off, a true one on; unset, ``DefaultOneDnnPolicy`` (port.cc) decides,
    which is on for every x86 CPU that oneDNN's float16 needs (they all have
    AVX512_BF16 or AMX), so "on" is all the profile needs to know."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS") if setting is None else setting
    if setting is None or str(setting).startswith("default"):
        return (machine or _platform.machine()).lower() in ("x86_64", "amd64")
    return str(setting).strip().lower() not in ("0", "false", "off", "no")


def onednn_half(features) -> bool:
    """``IsDataTypeSupportedByOneDNNOnThisCPU(DT_HALF)`` (util.cc)."""
    return (
        "AVX512BW" in features and ("AVX512FP16" in features or "AMX_FP16" in features) or "AVX_NE_CONVERT" in features
    )


def cpu_features() -> set:
    """This CPU's features, as NumPy's runtime dispatch sees them (the same
    names on every OS): e.g. ``AVX512FP16``, ``AVX512F``, ``ASIMDHP``."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    features = {name for name, present in __cpu_features__.items() if present}
    try:  # Linux names what NumPy does not (AMX_FP16, AVX_NE_CONVERT)
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return features | {_LINUX_FLAGS[f] for f in flags if f in _LINUX_FLAGS}


# /proc/cpuinfo flag names (what recordings store) -> NumPy's names.
_LINUX_FLAGS = {
    "avx512_fp16": "AVX512FP16",
    "avx512bw": "AVX512BW",
    "amx_fp16": "AMX_FP16",
    "avx_ne_convert": "AVX_NE_CONVERT",
    "avx512f": "AVX512F",
    "avx2": "AVX2",
    "asimdhp": "ASIMDHP",
}


def detect(features=None, onednn=None, machine=None) -> Profile:
    """The profile of a machine: its CPU ``features`` (NumPy's names, or
    /proc/cpuinfo flags as a recording stores them), its
    ``TF_ENABLE_ONEDNN_OPTS`` setting and ``platform.machine()``; each
    defaults to this machine's."""
    machine = (machine or _platform.machine()).lower()
    features = cpu_features() if features is None else {_LINUX_FLAGS.get(f, f) for f in features}
    if machine in ("aarch64", "arm64"):
        return PROFILES["aarch64"]
    if onednn_enabled(onednn, machine) and onednn_half(features):
        return PROFILES["x86-onednn-fp16"]
    return PROFILES["x86-eigen"]


_chosen = None  # set by use(): the command line's --platform


def use(name, where="--platform"):
    """Make ``name`` (or None: back to the default) this process's profile."""
    global _chosen
    _chosen = None if name is None else get(name, where=where)


def chosen():
    """The profile named by ``--platform`` or ``LSTM_PARITY_PLATFORM``, or
    None.  Live comparisons judge a worker by its own machine's profile
    unless one was named (``check --platform`` asks whether this machine
    computes what another profile computes)."""
    if _chosen is not None:
        return _chosen
    return get(os.environ[ENV_VAR], where=ENV_VAR) if os.environ.get(ENV_VAR) else None


def current() -> Profile:
    """``--platform`` if given, else ``LSTM_PARITY_PLATFORM``, else this machine's."""
    if _chosen is not None:
        return _chosen
    if os.environ.get(ENV_VAR):
        return get(os.environ[ENV_VAR], where=ENV_VAR)
    return detect()


def source() -> str:
    """Where :func:`current` took its profile from, for reports."""
    if _chosen is not None:
        return "--platform"
    return ENV_VAR if os.environ.get(ENV_VAR) else "detected"


def get(name, where="platform") -> Profile:
    """A profile by name (a :class:`Profile` passes through)."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise PlatformError(f"{where}: unknown platform profile {name!r}; known: {', '.join(PROFILES)}") from None


def resolve(name=None) -> Profile:
    """``None`` is :func:`current`; a name or a profile is :func:`get`."""
    return current() if name is None else get(name)


def profile_of_provenance(provenance: dict):
    """The profile a golden's or a recording's outputs were computed on.

    Goldens written before profiles were recorded carry no
    ``platform_profile``; every one of them in this repository was made on an
    AMD EPYC (their provenance's ``cpu``), which has no AVX512-FP16: Eigen's
    float16, ``x86-eigen`` (``parity_tests/meta/test_platform.py`` keeps it so)."""
    if provenance.get("platform_profile"):
        return get(provenance["platform_profile"], where="provenance")
    if provenance.get("cpu_flags"):
        return detect(provenance["cpu_flags"], provenance.get("onednn"), machine_of(provenance))
    return get("x86-eigen")


def machine_of(info: dict) -> str:
    """x86_64 or aarch64, from a provenance's or recording's ``platform`` string."""
    text = info.get("machine") or info.get("platform") or ""
    return "aarch64" if ("aarch64" in text or "arm64" in text) else "x86_64"
