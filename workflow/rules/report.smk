rule report:
    input:
        metrics=get_all_metrics(),
        fes=get_all_fes(),
    output:
        report(
            "results/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
    log:
        "logs/report/index.log",
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        args=get_report_args(),
    shell:
        "cgpipe report --output {output:q} {params.args} 2> {log:q}"
