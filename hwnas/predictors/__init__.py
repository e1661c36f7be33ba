"""Latency and accuracy predictors, their baselines, and the predictor accuracy report.

`LatencyPredictor` / `AccuracyPredictor` are scikit-learn estimators wrapping XGBoost
ensembles; `ComposedLatency` turns layer predictions into subnet latency; `api` trains from the
store, predicts a subnet and builds the report. Heavy imports (xgboost, matplotlib) happen
only when used.
"""

from hwnas.predictors.composed import ComposedLatency, SubnetPredictions
from hwnas.predictors.estimators import AccuracyPredictor, LatencyPredictor

__all__ = ["AccuracyPredictor", "ComposedLatency", "LatencyPredictor", "SubnetPredictions"]
