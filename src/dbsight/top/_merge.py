"""Several instances' ``/metrics/summary`` documents as one, for ``dbsight top`` with several
``--url``: merged by fingerprint exactly as ``dbsight report`` merges several ``--from``
(`report._merge.merge_summaries`: calls, errors, rows and times added, percentiles of the
pooled estimate where several instances ran a statement)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def merged_summary(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One summary document of ``documents`` (each already checked by `parse_summary`)."""
    from ..report._merge import merge_summaries

    merged = merge_summaries(documents)
    stamps = [str(doc.get("generated_at") or "") for doc in documents]
    return {
        "service": " + ".join(merged.services),
        "generated_at": max(stamps),  # ISO-8601 UTC strings order as times
        "workers": merged.workers,
        "top": merged.statements,
        "slow": merged.slow,
        "n_plus_one": merged.n_plus_one,
        "totals": merged.totals,
    }
