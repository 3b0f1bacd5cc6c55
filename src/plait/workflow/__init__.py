"""The workflows that use training and evaluation together — the only place they meet; neither
imports the other, nor this package.

- `plait.workflow.train`: `train(config)` / `fit_prepared(prepared)`, what `plait train` does:
  train (plait.training) → evaluate the held-out rows → calibrate → report → save the bundle.
- `plait.workflow.retrain`: `retrain_without`, the retrain ablation `plait evaluate
  --retrain-ablation` hands to plait.evaluation.
- `plait.workflow.balance`: `balance_report`, the training's field probes and gradient shares
  read against the held-out evaluation.

Nothing is imported here: importing a workflow imports Lightning, and `plait evaluate` should not.
"""
