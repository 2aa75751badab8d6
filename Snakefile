# cgpipe: machine-learned coarse-grained force fields, from all-atom reference to report.
#
# The path grammar (results/<stage>/{system}/{mapping}/{model}/fold{fold}/..., logs/,
# benchmarks/, resources/download/) is spelled once, in cgpipe/paths.py, and the rules
# build their inputs and outputs from it. Each job receives only its stage's and its
# method's configuration sections (cgpipe.config.job_config).
#
# Units everywhere: nm, ps, kJ/mol, kJ/mol/nm, K, amu.

from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/mapping.smk"
include: "workflow/rules/forces.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/backmap.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# On a cluster the target rule runs in Snakemake's own process, not as a job.
localrules:
    all,


rule all:
    default_target: True
    input:
        get_final_output(),
