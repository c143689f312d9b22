"""The seeds' claims as data, run and tabulated with error bars (`facebench claims`).

- `records.py`: the `Claim` record (statement, grid, measures, verdict rule), `register_claim`, `CLAIMS`;
- `seeds.py`: the seeds' claims, registered (`fr-finetune-epochs`, `fas-gan-pretraining`);
- `rules.py`: verdict rules (`CatchUp`, `Differences`); `stats.py`: Student-t and Welch intervals;
- `grid.py`: the grid points of a claim and the CLI's overrides; `running.py`: resumable training and evaluation
  in a work directory; `evaluations.py`: how a training is measured (FR: the runner; FAS: the calibration's HTER);
- `facts.py`: what a claim states that is read from the code; `render.py`: markdown and the docs block;
- `command.py`: the command without its command line.

Import the submodules; this package's `__init__` imports none of them (so that none imports it back).
"""
