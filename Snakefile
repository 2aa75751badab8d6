# cgpipe: machine-learned coarse-grained force fields, from all-atom reference to report.
#
# Path grammar (wildcards: system from config/systems.tsv, mapping in backbone|calpha,
# model in cgschnet|prior, fold in 0..n_folds-1, i = reference trajectory number):
#
#   resources/download/{system}/{filename}                     downloads (checksummed or pinned)
#   results/reference/{system}/structure.pdb                   prepared structure (generated systems)
#   results/reference/{system}/traj_{i}.h5                     all-atom positions + forces
#   results/mapping/{system}/{mapping}.parquet                 Xi rows + bead table + CG topology
#   results/cg/{system}/{mapping}.h5                           CG positions + forces, all trajectories
#   results/train/{system}/{mapping}/{model}/fold{fold}/       model.pt, losses.parquet
#   results/simulate/{system}/{mapping}/{model}/fold{fold}/    traj.h5, health.parquet
#   results/backmap/{system}/{mapping}/{model}/fold{fold}/     traj.h5 (all-atom), backmap.parquet
#   results/evaluate/{system}/{mapping}/{model}/               metrics.parquet, fes.png
#   results/report/index.html                                  the report across systems and models
#   logs/<stage>/..., benchmarks/<stage>/...
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
include: "workflow/rules/backmap.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
