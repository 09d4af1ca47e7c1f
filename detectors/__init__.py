"""Online drift detection, free of Kafka and I/O.

``detectors`` turns a stream of numbers into :class:`Change` reports. It never imports
``monitor``; the monitor wires detectors in, one per segment x signal, through a
:class:`DetectorBank`.

>>> import random
>>> from detectors import ADWINDetector
>>> rng = random.Random(7)
>>> det = ADWINDetector()
>>> stream = [rng.gauss(0, 1) for _ in range(1000)] + [rng.gauss(3, 1) for _ in range(200)]
>>> hits = [(i, c) for i, x in enumerate(stream) if (c := det.update(x)) is not None]
>>> i, change = hits[0]
>>> 1000 <= i < 1100, round(change.effect) >= 2
(True, True)
"""

from detectors.adwin import ADWINDetector
from detectors.bank import BasicPlan, DetectorBank, Plan, SignalKind, Watcher
from detectors.base import Change, Detector, DetectorSpec, make_detector, registered
from detectors.bernoulli import BernoulliCUSUMDetector, calibrate_bernoulli
from detectors.budget import FleetBudget, Persistence
from detectors.calibration import Calibration, calibrate, calibrate_bootstrap
from detectors.categorical import CategoricalDetector, calibrate_categorical
from detectors.cusum import CUSUMDetector, cusum_first_alarms
from detectors.ddm import DDMDetector
from detectors.eddm import EDDMDetector
from detectors.fhddm import FHDDMDetector
from detectors.hddm_a import HDDMADetector
from detectors.hddm_w import HDDMWDetector
from detectors.kswin import KSWINDetector
from detectors.page_hinkley import PageHinkleyDetector
from detectors.plans import Anchored, CalibratedPlan, CategoricalWatchers, stream_seed
from detectors.reference import Reference
from detectors.scale import ScaleCUSUMDetector, calibrate_scale

__all__ = [
    "ADWINDetector",
    "Anchored",
    "BasicPlan",
    "BernoulliCUSUMDetector",
    "CUSUMDetector",
    "CalibratedPlan",
    "Calibration",
    "CategoricalDetector",
    "CategoricalWatchers",
    "Change",
    "DDMDetector",
    "Detector",
    "DetectorBank",
    "DetectorSpec",
    "EDDMDetector",
    "FHDDMDetector",
    "FleetBudget",
    "HDDMADetector",
    "HDDMWDetector",
    "KSWINDetector",
    "PageHinkleyDetector",
    "Persistence",
    "Plan",
    "Reference",
    "ScaleCUSUMDetector",
    "SignalKind",
    "Watcher",
    "calibrate",
    "calibrate_bernoulli",
    "calibrate_bootstrap",
    "calibrate_categorical",
    "calibrate_scale",
    "cusum_first_alarms",
    "make_detector",
    "registered",
    "stream_seed",
]
