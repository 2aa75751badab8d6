rule mapping:
    input:
        "results/reference/{system}/traj_0.h5",
    output:
        "results/mapping/{system}/{mapping}.parquet",
    log:
        "logs/mapping/{system}/{mapping}.log",
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    shell:
        "cgpipe mapping --reference {input:q} --mapping {wildcards.mapping}"
        " --output {output:q} 2> {log:q}"
