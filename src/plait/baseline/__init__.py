"""The classical baseline every leaderboard shows beside the deep models: gradient boosting
(LightGBM) on per-field summary features, trained on the same rows, split, folds and seeds.

- `plait.baseline.features`: `summary_table(modalities, tensors)`, each field's summary features
  (the modality chooses them, `plait.modalities.summary`), NaN where the field is absent.
- `plait.baseline.boosting`: `fit_boosting(...)` → `BoostingResult`, with each field retrained
  away (`retrained_without`), as a user's own forest would be.

LightGBM is imported only when a baseline is fitted."""
