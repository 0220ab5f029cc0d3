"""Read models: aggregates and joined reads that pages and API lists share.

Each module answers one kind of question (the fabric map, workflows with progress)
with as few queries as the answer needs, under the same principal rules as the
services that write. Nothing here writes; the edges (API, portal, CLI) only render.
"""
