"""The coding problems: solver front ends that compose an x-step, a prox and a coupling.

Each class here checks its inputs, builds the pieces of :mod:`csc.core` — an x-step
(:mod:`csc.core.xstep`), the y-step's prox (:mod:`csc.core.prox`), the coupling of the
images — asks the back-end registry (:mod:`csc.backends.registry`) for a workspace, runs
the one loop (:class:`csc.core.admm.ADMMLoop`, :class:`csc.core.fista.FISTALoop`) and
shapes the result. This layer sits above :mod:`csc.backends` and :mod:`csc.core`, and
below the learners, the pipeline and the CLI.

- :mod:`csc.problems.cbpdn` — :class:`csc.ConvBPDN` (and ``encode``, ``solve_in_batches``);
- :mod:`csc.problems.joint` — :class:`csc.ConvBPDNJoint` (joint sparsity over channels);
- :mod:`csc.problems.variants` — :class:`csc.ConvElasticNet`, :class:`csc.ConvBPDNGradReg`,
  :class:`csc.ConvL1L1Grd`;
- :mod:`csc.problems.maskdcpl` — :class:`csc.ConvBPDNMaskDcpl`;
- :mod:`csc.problems.ams` — :class:`csc.AddMaskSim`;
- :mod:`csc.problems.constrained` — :class:`csc.ConvBPDNProjL1`, :class:`csc.ConvMinL1InL2Ball`;
- :mod:`csc.problems.inhib` — :class:`csc.ConvBPDNInhib` (lateral and self inhibition);
- :mod:`csc.problems.proddict` — :class:`csc.ConvProdDictBPDN`, :class:`csc.ConvProdDictL1L1Grd`,
  :class:`csc.ConvProdDictL1L1GrdJoint` (product dictionaries D·Bᵀ);
- :mod:`csc.problems.fista` — :class:`csc.ConvBPDNFISTA`;
- :mod:`csc.problems.path` — :func:`csc.lambda_path`.
"""
