"""The `mskbench` pluggy hook specifications (DESIGN §3).

Every hook follows the register-callback style: the harness calls the hook
with a ``register`` callable and the plugin calls it once per named factory::

    register(
        name="my_model",
        factory=make_my_model,          # called with the validated params
        description="One line for `mskbench plugins`.",
        params={"variant": Param("str", default="base", choices=["base", "large"])},
        version="1.2.0",                # defaults to the distribution's version
        requires=("checkpoint",),       # what the user must supply
    )

A plugin module implements any subset of these hooks with
``@mskbench.hookimpl`` and is exposed through the ``mskbench`` entry-point
group. docs/plugins.md documents each hook; a test keeps them in step.
"""

from __future__ import annotations

import pluggy

PROJECT = "mskbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mskbench_register_datasets(register):
    """Register dataset factories; each returns a :class:`mskbench.protocols.Dataset`."""


@hookspec
def mskbench_register_models(register):
    """Register model factories; each returns a :class:`mskbench.protocols.Segmenter`.

    The factory receives its validated params plus the keyword arguments
    ``device`` (a ``torch.device`` string) and ``checkpoint`` (a resolved path
    or None).
    """


@hookspec
def mskbench_register_prompters(register):
    """Register prompter factories; each returns a :class:`mskbench.protocols.Prompter`."""


@hookspec
def mskbench_register_biomarkers(register):
    """Register biomarker factories; each returns a :class:`mskbench.protocols.Biomarker`."""


@hookspec
def mskbench_register_metrics(register):
    """Register metric factories; each returns a :class:`mskbench.protocols.Metric`."""
