"""Cross-modal retrieval in the shared space: for every aligned pair of fields and both directions,
how highly each row's own item of the other field ranks among the candidates.

Queries and candidates are the evaluated rows where both fields are present; the true match of a
query is the same row's other field. Rank = 1 + the number of candidates more similar (cosine)
than the match, so ties count in the query's favour. Instance level: Recall@K (the match in the top
K), MRR (mean of 1/rank), median rank. Label level (classification): the match is any candidate
with the query's label — rank of the first such candidate — which says whether the space groups
items by class even where it cannot tell two items of a class apart."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

KS = (1, 5, 10)
_CHUNK = 1024  # queries scored at once: (1024, N) similarities
METHOD = (
    "rows where both fields are present; rank = 1 + candidates more similar than the row's own item "
    "(cosine in the shared space); label level: the first candidate with the query's label"
)


@dataclass(frozen=True)
class RetrievalScores:
    recall: Mapping[int, float]  # K -> share of queries whose match ranks in the top K
    mrr: float  # mean of 1 / rank
    median_rank: float
    queries: int
    candidates: int

    def to_json(self) -> dict[str, Any]:
        return {
            "recall": {str(k): v for k, v in self.recall.items()},
            "mrr": self.mrr,
            "median_rank": self.median_rank,
            "queries": self.queries,
            "candidates": self.candidates,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RetrievalScores:
        return cls(
            recall={int(k): float(v) for k, v in raw["recall"].items()},
            mrr=float(raw["mrr"]),
            median_rank=float(raw["median_rank"]),
            queries=int(raw["queries"]),
            candidates=int(raw["candidates"]),
        )


@dataclass(frozen=True)
class DirectionRetrieval:
    """Queries of field `query` retrieving items of field `target`."""

    query: str
    target: str
    instance: RetrievalScores
    label: RetrievalScores | None  # None: a regression, or rows without labels

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "target": self.target,
            "instance": self.instance.to_json(),
            "label": None if self.label is None else self.label.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DirectionRetrieval:
        label = raw.get("label")
        return cls(
            query=str(raw["query"]),
            target=str(raw["target"]),
            instance=RetrievalScores.from_json(raw["instance"]),
            label=None if label is None else RetrievalScores.from_json(label),
        )


def rank_matches(
    queries: Tensor, candidates: Tensor, labels: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """Ranks (1 = best) of each query's match: queries (n, d) and candidates (n, d) unit vectors,
    query i's match candidate i. With `labels` (n,), also the rank of the first candidate that
    shares query i's label. Scored in chunks of queries, so memory is (chunk, n)."""
    n = queries.shape[0]
    instance = torch.empty(n, dtype=torch.long)
    by_label = None if labels is None else torch.empty(n, dtype=torch.long)
    for start in range(0, n, _CHUNK):
        rows = torch.arange(start, min(start + _CHUNK, n))
        sims = queries[rows] @ candidates.T  # (m, d) @ (d, n) -> (m, n)
        own = sims[torch.arange(len(rows)), rows]  # (m,)
        instance[rows] = (sims > own[:, None]).sum(dim=1) + 1
        if labels is not None and by_label is not None:
            same = labels[rows][:, None] == labels[None, :]  # (m, n)
            best = sims.masked_fill(~same, float("-inf")).max(dim=1).values  # (m,)
            by_label[rows] = (sims > best[:, None]).sum(dim=1) + 1
    return instance, by_label


def scores_of(ranks: Tensor, candidates: int, ks: Sequence[int] = KS) -> RetrievalScores:
    """Recall@K, MRR and median rank of 1-based ranks (n,)."""
    r = ranks.double()
    return RetrievalScores(
        recall={k: round(float((r <= k).double().mean()), 6) for k in ks},
        mrr=round(float((1.0 / r).mean()), 6),
        median_rank=float(statistics.median(ranks.tolist())),
        queries=int(ranks.numel()),
        candidates=candidates,
    )


def pair_retrieval(
    embedded: Mapping[str, Tensor],
    present: Mapping[str, Tensor],
    pairs: Sequence[tuple[str, str]],
    labels: Tensor | None = None,
) -> tuple[DirectionRetrieval, ...]:
    """Both directions of every pair, over the rows where both fields are present (pairs with
    fewer than two such rows are left out); the label level over those of them with a label.
    embedded[f]: (N, d) unit vectors; present[f]: BoolTensor[N]; labels: (N,) class indices
    (< 0: unlabelled) or None."""
    out: list[DirectionRetrieval] = []
    for first, second in pairs:
        rows = (present[first].bool() & present[second].bool()).nonzero().squeeze(1)  # (n,)
        if rows.numel() < 2:
            continue
        labelled = None if labels is None else rows[labels[rows] >= 0]  # label level: labelled rows
        if labelled is not None and labelled.numel() < 2:
            labelled = None
        for query, target in ((first, second), (second, first)):
            instance, _ = rank_matches(embedded[query][rows], embedded[target][rows])
            by_label = None
            if labelled is not None and labels is not None:
                _, by_label = rank_matches(
                    embedded[query][labelled], embedded[target][labelled], labels[labelled]
                )
            out.append(
                DirectionRetrieval(
                    query=query,
                    target=target,
                    instance=scores_of(instance, len(rows)),
                    label=None
                    if by_label is None or labelled is None
                    else scores_of(by_label, len(labelled)),
                )
            )
    return tuple(out)
