"""cgpipe: machine-learned coarse-grained force fields for peptides and proteins.

The package holds one subpackage per workflow stage (``reference``, ``mapping``,
``forces``, ``train``, ``simulate``, ``backmap``, ``evaluate``, ``report``), the shared
models (``cgpipe.models``) and the artifact I/O (``cgpipe.io``). It never imports
Snakemake: every stage runs from the ``cgpipe`` command line as well.
"""

__version__ = "0.1.0"
