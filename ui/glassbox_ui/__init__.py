"""glassbox ui: one web page over an artifact store (runs, checkpoints, curves, graphs, scores).

It reads only the store through glassbox_api (run.json, manifest.json and the files manifests list),
so it needs no cluster and no ML framework; `glassbox ui --store DIR|s3://...` serves it.
"""
