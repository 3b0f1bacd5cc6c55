"""The workflows that use training and evaluation together — the only place they meet; neither
imports the other, nor this package.

- `plait.workflow.train`: `train(config)` / `fit_prepared(prepared)`, what `plait train` does:
  train (plait.training) → evaluate the held-out rows → calibrate → report → save the bundle.
- `plait.workflow.evaluate`: `evaluate_report`, what `plait evaluate` does: read and check the table,
  choose the rows, run the full evaluation (plait.evaluation), write metrics.json and report.html.
- `plait.workflow.retrain`: `retrain_without`, the retrain ablation `plait evaluate
  --retrain-ablation` hands to plait.evaluation.
- `plait.workflow.balance`: `balance_report`, the training's field probes and gradient shares
  read against the held-out evaluation.

Nothing is imported here: importing the training workflow imports Lightning, and `plait evaluate`
(plait.workflow.evaluate, which imports no training) should not.
"""
