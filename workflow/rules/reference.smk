# Reference data: generated with OpenMM (prepare, then one job per trajectory) or
# downloaded with checksums and converted (download, ingest).


rule prepare_structure:
    input:
        get_structure_file,
    output:
        "results/reference/{system}/structure.pdb",
    log:
        "logs/reference/{system}/structure.log",
    wildcard_constraints:
        system=_one_of(GENERATED),
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        source=get_structure_source,
        config=config_json("reference"),
    shell:
        "cgpipe prepare --system {wildcards.system} {params.source}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"


rule reference:
    input:
        "results/reference/{system}/structure.pdb",
    output:
        "results/reference/{system}/traj_{i}.h5",
    log:
        "logs/reference/{system}/traj_{i}.log",
    benchmark:
        "benchmarks/reference/{system}/traj_{i}.tsv"
    wildcard_constraints:
        system=_one_of(GENERATED),
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        gpu=1,
    params:
        config=config_json("reference"),
    shell:
        "cgpipe reference --structure {input:q} --system {wildcards.system}"
        " --index {wildcards.i} --output {output:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"


rule download:
    output:
        "resources/download/{system}/{filename}",
    log:
        "logs/download/{system}/{filename}.log",
    wildcard_constraints:
        system=_one_of(DOWNLOADED),
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        source=get_download_args,
        config=config_json("download"),
    shell:
        "cgpipe download {params.source} --output {output:q}"
        " --config {params.config:q} 2> {log:q}"


rule ingest:
    input:
        get_downloads,
    output:
        "results/reference/{system}/traj_{i}.h5",
    log:
        "logs/reference/{system}/traj_{i}.log",
    wildcard_constraints:
        system=_one_of(DOWNLOADED),
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        source=get_source,
        config=config_json("download"),
    shell:
        "cgpipe ingest --source {params.source} {input:q} --system {wildcards.system}"
        " --index {wildcards.i} --output {output:q} --config {params.config:q} 2> {log:q}"
