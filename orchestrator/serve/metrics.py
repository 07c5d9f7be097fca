"""/metrics: the latest Picture in the Prometheus text format.

`families()` is pure: the metric families of one Picture as data, so a
scrape never mixes two passes.  `FleetCollector` hands them to
prometheus_client, which writes the exposition format.  Labels: host, dir
(the tmp dir of a job, the dir itself, a transfer's destination dir),
plotter, k, level (the compression level where the record carries one,
else ""), and where it says more: kind, code, phase, state, to_host, plot_id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry
from prometheus_client.exposition import generate_latest

from orchestrator.core import plotsize
from orchestrator.core.state import phase_str
from orchestrator.core.wave import wave
from orchestrator.serve.picture import Latest, Picture, level_of, transfer_rate

JOB = ("host", "dir", "plotter", "k", "level")


@dataclass(frozen=True)
class Family:
    name: str
    kind: str                   # gauge | counter
    doc: str
    labels: Tuple[str, ...]
    samples: Tuple[Tuple[Tuple[str, ...], float], ...]


def _count(rows) -> Tuple[Tuple[Tuple[str, ...], float], ...]:
    out = {}
    for key in rows:
        out[key] = out.get(key, 0) + 1
    return tuple((k, float(v)) for k, v in sorted(out.items()))


def families(p: Picture) -> List[Family]:
    st = p.state
    up = [h for h in st.hosts if h.reachable]
    jobs = [(h, j) for h in up for j in h.jobs]
    dirs = [(h, d) for h in up for d in h.dirs]

    def job_labels(h, j):
        return (h.name, j.tmp_dir or "", j.plotter, str(j.k), level_of(j))

    running = [(h, x) for h in up for x in h.transfers if x.status == "running"]
    rates = {}
    for h, x in running:
        key = (h.name, x.to_dir, x.to_host)
        rates[key] = rates.get(key, 0.0) + (transfer_rate(h.host_time or st.now, x) or 0.0)
    model = p.farm
    w = p.wave if p.wave is not None else wave(st, p.hosts)
    # one series per kind of plot the fleet makes: k with its compression
    kinds = sorted({(p.hosts[h.name].k, p.hosts[h.name].compression) for h in st.hosts
                    if h.name in p.hosts and p.hosts[h.name].is_plotter},
                   key=lambda kc: (kc[0], plotsize.label(kc[1])))
    return [
        Family("plotfleet_host_up", "gauge", "1 if the host answered in the latest pass",
               ("host",), tuple(((h.name,), float(h.reachable)) for h in st.hosts)),
        Family("plotfleet_jobs", "gauge", "plot jobs, by phase major and state",
               JOB + ("phase", "state"),
               _count(job_labels(h, j) + ("unknown" if j.phase is None else str(j.phase[0]),
                                          "stalled" if j.stalled else j.state)
                      for h, j in jobs)),
        Family("plotfleet_job_phase_seconds", "gauge",
               "seconds each job has run, labelled with its phase major:minor",
               JOB + ("plot_id", "phase"),
               tuple((job_labels(h, j) + (j.plot_id or f"pid{j.pid}",
                                          phase_str(j.phase)),
                      float(j.elapsed_s)) for h, j in jobs)),
        Family("plotfleet_dir_free_bytes", "gauge", "free bytes of each configured dir",
               ("host", "dir", "kind"),
               tuple(((h.name, d.path, d.kind), float(d.free_bytes)) for h, d in dirs)),
        Family("plotfleet_dir_total_bytes", "gauge", "size of each configured dir's filesystem",
               ("host", "dir", "kind"),
               tuple(((h.name, d.path, d.kind), float(d.total_bytes)) for h, d in dirs)),
        Family("plotfleet_dir_error", "gauge", "1 if the dir cannot be used now (code says why)",
               ("host", "dir", "kind", "code"),
               tuple(((h.name, d.path, d.kind, d.error_code or ("error" if d.error else "")),
                      float(bool(d.error))) for h, d in dirs)),
        Family("plotfleet_plots_waiting", "gauge", "finished plots waiting to be archived",
               ("host", "dir", "k", "level"),
               _count((h.name, x.path.rsplit("/", 1)[0], str(x.k or ""), level_of(x))
                      for h in up for x in h.plots)),
        Family("plotfleet_plots_quarantined", "gauge",
               "plots waiting in <dst>/quarantine/ after failing their proof check; "
               "`reason` in the prover's words or as the ratio found",
               ("host", "dir", "plot", "reason"),
               tuple(((h.name, q.dst_dir, q.path.rsplit("/", 1)[-1], q.reason), 1.0)
                     for h in up for q in h.quarantine)),
        Family("plotfleet_checks_running", "gauge", "proof checks running, by host",
               ("host",), tuple(((h.name,), float(len(h.checks))) for h in up)),
        Family("plotfleet_plot_check_ratio", "gauge",
               "valid proofs per challenge of each waiting plot's proof check",
               ("host", "plot", "status"),
               tuple(((h.name, x.path.rsplit("/", 1)[-1], x.check.status),
                      float(x.check.ratio)) for h in up for x in h.plots
                     if x.check is not None and x.check.ratio is not None)),
        Family("plotfleet_transfers_active", "gauge", "transfers running, by destination",
               ("host", "dir", "to_host"),
               _count((h.name, x.to_dir, x.to_host) for h, x in running)),
        Family("plotfleet_transfer_bytes_per_second", "gauge",
               "average rate of the running transfers so far, by destination",
               ("host", "dir", "to_host"), tuple(sorted(rates.items()))),
        Family("plotfleet_farm_plots", "gauge", "plots on each harvester farm dir",
               ("host", "dir"),
               tuple(((h.name, d.path), float(d.plot_count)) for h, d in dirs
                     if d.kind == "farm")),
        Family("plotfleet_farm_free_plots", "gauge",
               "plots of size k the usable farm drives still have room for (after reserve)",
               ("k", "level"), tuple(((str(k), plotsize.label(c)), float(model.fits(k, c)))
                                     for k, c in kinds)),
        Family("plotfleet_replot_old_plots", "gauge",
               "farm plots a replot rule matches, still to be replaced", ("host",),
               tuple(((r.host,), float(r.old)) for r in w.harvesters)),
        Family("plotfleet_replot_new_plots", "gauge", "farm plots no replot rule matches",
               ("host",), tuple(((r.host,), float(r.new)) for r in w.harvesters)),
        Family("plotfleet_replot_replaced_24h", "gauge",
               "old plots deleted for new ones in the last 24 h (the harvesters' ledgers)",
               ("host",), tuple(((r.host,), float(r.replaced_24h)) for r in w.harvesters)),
        Family("plotfleet_replot_behind", "gauge",
               "1 if the replot wave will not make replot_deadline at the last 24 h's rate",
               (), (((), float(w.behind)),) if w.active and w.deadline else ()),
        Family("plotfleet_replot_days_left", "gauge",
               "days until the last old plot goes, at the last 24 h's rate", (),
               (((), float(w.days_left)),) if w.active and w.days_left is not None else ()),
        Family("plotfleet_jobs_failed", "counter",
               "jobs seen failed (not killed on request) since this controller started",
               JOB, tuple(sorted((k, float(v)) for k, v in p.failed.items()))),
        Family("plotfleet_plots_archived", "counter",
               "plots given their final name on a harvester drive since this controller started",
               ("host", "dir", "k", "level"),
               tuple(sorted((k, float(v)) for k, v in p.archived.items()))),
        Family("plotfleet_pass_seconds", "gauge", "how long the latest pass took", (),
               (((), float(p.seconds)),)),
        Family("plotfleet_pass_timestamp_seconds", "gauge", "when the latest pass ended (epoch)",
               (), (((), float(p.at)),)),
    ]


class FleetCollector:
    """A prometheus_client collector over the latest Picture (none: no samples)."""

    def __init__(self, latest: Latest):
        self.latest = latest

    def collect(self):
        p = self.latest.picture
        if p is None:
            return
        for f in families(p):
            cls = GaugeMetricFamily if f.kind == "gauge" else CounterMetricFamily
            m = cls(f.name,  # a counter's _total is added by the client
                     f.doc, labels=list(f.labels))
            for labels, value in f.samples:
                m.add_metric(list(labels), value)
            yield m


def exposition(latest: Latest) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(latest))
    return generate_latest(registry)
