"""Conformance suites for plug-ins: the checks assay runs on its own samplers, decision rules and
proposers, for a package that adds its own to run in its tests.

Each module holds plain functions that raise AssertionError (with what went wrong) when a plug-in
breaks its protocol, so they work under pytest, unittest or a script, and need no test framework:

    from assay.testing.samplers import check_sampler

    def test_my_sampler_conforms():
        check_sampler(MySampler)  # factory(space, goal, seed, **options) -> Sampler

- `assay.testing.samplers.check_sampler(factory)`: ask() stays inside the space, tell() accepts
  any history, a finite grid exhausts, a seed makes it repeatable.
- `assay.testing.decisions.check_decision_rule(factory)`: keeps a clear gain, discards a clear
  loss, answers with a reason, and (when asked) bounds its false keeps on pure noise.
- `assay.testing.proposers.check_proposer(factory, lab, state)`: edits only editable files,
  describes the change in one line, accepts every outcome, stops with `Exhausted`.
"""
