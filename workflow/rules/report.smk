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
    params:
        args=get_report_args(),
    log:
        "logs/report/index.log",
    conda:
        "../../envs/cgpipe.yaml"
    shell:
        "cgpipe report --output {output:q} {params.args} 2> {log:q}"
