//! Turns the comparison scripts' outputs into one report and its charts:
//! `target/bench/report.md` and `target/bench/*.svg` (drawn with plotters).
//!
//! ```text
//! cargo run --release --example bench_report -- [--dir target/bench] \
//!     [--load-start "1.0 0.9 0.8"] [--secs 540] [--build-secs 2] [--commit abc1234] \
//!     [--mode full]
//! ```
//!
//! It reads whatever is there, and says what is not:
//!
//! - echo (`scripts/echo-compare.sh`): the raw runs in
//!   `echo-compare/runs.tsv` (name, round, load, run-queue %, the JSON line
//!   of `edgechat bench`) for the charts, and `echo-compare.md`'s table;
//! - chat (`scripts/chat-compare.sh`, as run by `scripts/bench.sh`): the raw
//!   runs in `chat-compare/runs.txt` (name, receivers, depth, lines/s, CPU
//!   µs per delivery, p99, p50 and p999 µs) and the tables in
//!   `chat-compare.md`;
//! - TLS (`scripts/tls-compare.sh`): the raw runs in `tls-compare/runs.tsv`
//!   (name `ours` or `peer`, round, load, ..., the JSON line) for the charts,
//!   and `tls-compare.md`'s table; with no runs, the table's rows are charted
//!   (rates as throughput, p50/p99/p999 as latency); with runs but no table
//!   (the script was cut short), a table is made from the runs.
//!
//! Charts: `echo-throughput.svg`, `echo-latency.svg`, `chat-throughput.svg`,
//! `chat-latency.svg`, `tls-throughput.svg`, `tls-latency.svg`; each bar is
//! the median, each dot one run where the raw runs are kept.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type Res<T> = Result<T, Box<dyn Error>>;

const ECHO: [(&str, &str); 4] = [
    ("edgechat", "edgechat"),
    ("tokio", "tokio"),
    ("mio", "mio"),
    ("blocking", "blocking floor"),
];
const TLS: [(&str, &str); 2] = [("ours", "edgechat"), ("peer", "tokio-rustls")];
const COLORS: [RGBColor; 6] = [
    RGBColor(214, 69, 40),
    RGBColor(60, 110, 180),
    RGBColor(90, 160, 90),
    RGBColor(130, 130, 130),
    RGBColor(160, 100, 170),
    RGBColor(200, 160, 50),
];

/// One group's bar: the median, and every run's value (dots).
type Bar = (Option<f64>, Vec<f64>);

/// One set of bars sharing a y axis: a bar per series in each group.
struct Panel {
    title: String,
    unit: String,
    log: bool,
    groups: Vec<String>,
    /// (series name, per group: the median, and every run's value).
    series: Vec<(String, Vec<Bar>)>,
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A number from a flat JSON object (`"key":1.5`), `None` for null or absent.
fn jnum(json: &str, key: &str) -> Option<f64> {
    let tag = format!("\"{key}\":");
    let at = json.find(&tag)? + tag.len();
    let rest = &json[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// A markdown cell as a number: `57 409` → 57409, `0.90×` → 0.9, `–` → None.
fn cell_num(s: &str) -> Option<f64> {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-' || *c == 'e')
        .collect();
    if t.is_empty() || t == "-" {
        return None;
    }
    t.parse().ok()
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A markdown table: its header cells and rows of cells.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    t.split('|').map(|c| c.trim().to_string()).collect()
}

fn tables(md: &str) -> Vec<Table> {
    let mut out = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i + 1 < lines.len() {
        let sep = lines[i + 1].trim();
        if lines[i].trim().starts_with('|') && sep.starts_with("|") && sep.contains("---") {
            let header = cells(lines[i]);
            let mut rows = Vec::new();
            i += 2;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            out.push(Table { header, rows });
        } else {
            i += 1;
        }
    }
    out
}

fn draw_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, p: &Panel) -> Res<()> {
    let all: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, g)| g.iter().flat_map(|(m, runs)| m.iter().chain(runs)))
        .copied()
        .filter(|v| v.is_finite() && (!p.log || *v > 0.0))
        .collect();
    let Some(max) = all.iter().copied().reduce(f64::max) else {
        area.titled(&format!("{} (no data)", p.title), ("sans-serif", 15))?;
        return Ok(());
    };
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let n = p.groups.len().max(1) as f64;
    let mut b = ChartBuilder::on(area);
    b.caption(&p.title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(56);
    if p.log {
        let lo = 10f64.powf(min.log10().floor());
        let hi = max * 20.0;
        let mut chart = b.build_cartesian_2d(0f64..n, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(&p.unit)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        bars(&mut chart, p, lo, area)
    } else {
        let mut chart = b.build_cartesian_2d(0f64..n, 0f64..max * 1.35)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(&p.unit)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        bars(&mut chart, p, 0.0, area)
    }
}

fn bars<'a, Y>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    p: &Panel,
    base: f64,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
) -> Res<()>
where
    Y: Ranged<ValueType = f64>,
{
    let k = p.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (s, (name, groups)) in p.series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let x0 = |g: usize| g as f64 + 0.1 + s as f64 * width;
        chart
            .draw_series(groups.iter().enumerate().filter_map(|(g, (m, _))| {
                m.map(|m| Rectangle::new([(x0(g), base), (x0(g) + width * 0.9, m)], color.filled()))
            }))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart.draw_series(groups.iter().enumerate().flat_map(|(g, (_, runs))| {
            runs.iter()
                .filter(|v| v.is_finite() && **v > base)
                .map(move |v| Circle::new((x0(g) + width * 0.45, *v), 2, BLACK.filled()))
        }))?;
        chart.draw_series(groups.iter().enumerate().filter_map(|(g, (m, _))| {
            m.map(|m| {
                Text::new(
                    fmt_num(m),
                    (x0(g) + width * 0.45, m),
                    ("sans-serif", 10)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            })
        }))?;
    }
    // Group names under the axis, centred on their group.
    let style = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    let (ax, ay) = area.get_base_pixel();
    for (g, name) in p.groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, base));
        area.draw(&Text::new(
            name.clone(),
            (x - ax, y - ay + 6),
            style.clone(),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 11))
        .draw()?;
    Ok(())
}

/// One SVG of panels side by side (two rows when there are more than three).
fn chart(path: &Path, title: &str, panels: &[Panel]) -> Res<()> {
    // Four panels as two by two, otherwise rows of up to three.
    let cols = if panels.len() == 4 {
        2
    } else {
        panels.len().clamp(1, 3)
    };
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = ((420 * cols as u32).max(640), 340 * rows as u32 + 40);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let areas = root.split_evenly((rows, cols));
    for (p, area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, p)?;
    }
    root.present()?;
    Ok(())
}

/// Per-run JSON lines from a compare script's `runs.tsv` (name, round,
/// load, ..., the JSON last), keyed by (server, load).
type Runs = BTreeMap<(String, String), Vec<String>>;

fn read_runs(path: &Path) -> Runs {
    let mut runs = Runs::new();
    let Ok(text) = fs::read_to_string(path) else {
        return runs;
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() >= 4 && f[f.len() - 1].starts_with('{') {
            runs.entry((f[0].to_string(), f[2].to_string()))
                .or_default()
                .push(f[f.len() - 1].to_string());
        }
    }
    runs
}

/// A panel from raw runs: one bar per server in `names` (name in the runs,
/// name shown) in each group.
fn runs_panel(
    runs: &Runs,
    names: &[(&str, &str)],
    title: &str,
    unit: &str,
    log: bool,
    groups: &[(&str, &str, &str)], // (group label, load, JSON key)
) -> Panel {
    let series = names
        .iter()
        .map(|(name, shown)| {
            let per_group = groups
                .iter()
                .map(|(_, load, key)| {
                    let vals: Vec<f64> = runs
                        .get(&(name.to_string(), load.to_string()))
                        .map(|js| js.iter().filter_map(|j| jnum(j, key)).collect())
                        .unwrap_or_default();
                    (median(&vals), vals)
                })
                .collect();
            (shown.to_string(), per_group)
        })
        .collect();
    Panel {
        title: title.to_string(),
        unit: unit.to_string(),
        log,
        groups: groups.iter().map(|g| g.0.to_string()).collect(),
        series,
    }
}

fn runs_panel_owned(
    runs: &Runs,
    names: &[(&str, &str)],
    title: &str,
    unit: &str,
    log: bool,
    groups: &[(String, String, String)],
) -> Panel {
    let g: Vec<(&str, &str, &str)> = groups
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    runs_panel(runs, names, title, unit, log, &g)
}

/// TLS rows for a table made from the raw runs: (label, load, JSON key, places).
const TLS_ROWS: &[(&str, &str, &str, usize)] = &[
    ("TLS pingpong 64 B × 50: msgs/s", "pp50", "msgs_per_sec", 0),
    (
        "TLS pingpong 64 B × 50: server CPU µs/msg",
        "pp50",
        "server_cpu_us_per_msg",
        3,
    ),
    ("TLS pingpong 64 B × 50: p99 µs", "pp50", "p99_us", 0),
    (
        "TLS stream 16 KiB × 1 (depth 4): MB/s",
        "st1",
        "mb_per_sec",
        0,
    ),
    (
        "full handshakes: handshakes/s",
        "hsfull",
        "handshakes_per_sec",
        0,
    ),
    (
        "full handshakes: server CPU µs/handshake",
        "hsfull",
        "server_cpu_us_per_handshake",
        1,
    ),
    (
        "resumed handshakes: handshakes/s",
        "hsres",
        "handshakes_per_sec",
        0,
    ),
    (
        "resumed handshakes: server CPU µs/handshake",
        "hsres",
        "server_cpu_us_per_handshake",
        1,
    ),
];

/// figure | each server | first/second, medians of the raw runs.
fn runs_table(
    runs: &Runs,
    names: &[(&str, &str)],
    rows: &[(&str, &str, &str, usize)],
    out: &mut String,
) {
    let shown: Vec<&str> = names.iter().map(|n| n.1).collect();
    let _ = writeln!(
        out,
        "| figure | {} | {}/{} |",
        shown.join(" | "),
        shown[0],
        shown.get(1).unwrap_or(&"")
    );
    let _ = writeln!(out, "|---|{}---:|", "---:|".repeat(names.len()));
    for (label, load, key, places) in rows {
        let vals: Vec<Option<f64>> = names
            .iter()
            .map(|(name, _)| {
                let v: Vec<f64> = runs
                    .get(&(name.to_string(), load.to_string()))
                    .map(|js| js.iter().filter_map(|j| jnum(j, key)).collect())
                    .unwrap_or_default();
                median(&v)
            })
            .collect();
        let cells: Vec<String> = vals.iter().map(|v| opt(*v, *places)).collect();
        let _ = writeln!(
            out,
            "| {label} | {} | {} |",
            cells.join(" | "),
            ratio(vals[0], vals.get(1).copied().flatten())
        );
    }
    out.push('\n');
}

/// Chat: (name, receivers, depth) → per run [lines/s, CPU µs/delivery, p99,
/// p50, p999 µs] (NaN where an older runs.txt has no p50 and p999).
type ChatRuns = BTreeMap<(String, u32, u32), Vec<[f64; 5]>>;

/// Columns of a [`ChatRuns`] entry.
const CHAT_P99: usize = 2;
const CHAT_P50: usize = 3;
const CHAT_P999: usize = 4;

fn chat_runs(dir: &Path) -> ChatRuns {
    let mut runs = ChatRuns::new();
    let Ok(text) = fs::read_to_string(dir.join("chat-compare/runs.txt")) else {
        return runs;
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (Ok(r), Ok(d)) = (f[1].parse(), f[2].parse()) else {
            continue;
        };
        let num = |i: usize| f.get(i).and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
        runs.entry((f[0].to_string(), r, d)).or_default().push([
            num(3),
            num(4),
            num(5),
            num(6),
            num(7),
        ]);
    }
    runs
}

const CHAT: [&str; 2] = ["edgechat", "peer"];

fn chat_configs(runs: &ChatRuns) -> Vec<(u32, u32)> {
    let mut c: Vec<(u32, u32)> = runs.keys().map(|k| (k.1, k.2)).collect();
    c.sort();
    c.dedup();
    c
}

/// Column `col` of server `name`'s runs at fan-out 1 → `r`, D = `d`: their
/// median, and every run's value (missing ones left out).
fn chat_bar(runs: &ChatRuns, name: &str, r: u32, d: u32, col: usize) -> Bar {
    let vals: Vec<f64> = runs
        .get(&(name.to_string(), r, d))
        .map(|v| v.iter().map(|x| x[col]).filter(|v| v.is_finite()).collect())
        .unwrap_or_default();
    (median(&vals), vals)
}

fn chat_panel(runs: &ChatRuns, title: &str, unit: &str, col: usize) -> Panel {
    let configs = chat_configs(runs);
    let series = CHAT
        .iter()
        .map(|name| {
            let per = configs
                .iter()
                .map(|&(r, d)| chat_bar(runs, name, r, d, col))
                .collect();
            (name.to_string(), per)
        })
        .collect();
    Panel {
        title: title.to_string(),
        unit: unit.to_string(),
        log: true,
        groups: configs
            .iter()
            .map(|(r, d)| format!("R={r} D={d}"))
            .collect(),
        series,
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_string(),
    }
}

fn opt(v: Option<f64>, places: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.places$}"))
}

/// One chat configuration's latency percentiles: a group per percentile,
/// a bar per server.
fn chat_pct_panel(runs: &ChatRuns, r: u32, d: u32) -> Panel {
    let pct = [("p50", CHAT_P50), ("p99", CHAT_P99), ("p999", CHAT_P999)];
    let series = CHAT
        .iter()
        .map(|name| {
            let per = pct
                .iter()
                .map(|&(_, col)| chat_bar(runs, name, r, d, col))
                .collect();
            (name.to_string(), per)
        })
        .collect();
    Panel {
        title: format!("fan-out 1 → {r}, D = {d}"),
        unit: "µs".to_string(),
        log: true,
        groups: pct.iter().map(|(l, _)| l.to_string()).collect(),
        series,
    }
}

/// The chat fan-out runs as figure | edgechat | peer | ratio rows.
fn chat_table(runs: &ChatRuns, out: &mut String) {
    out.push_str("| figure | edgechat | peer | edgechat/peer |\n|---|---:|---:|---:|\n");
    for (r, d) in chat_configs(runs) {
        for (col, what, places) in [
            (0, "lines/s", 0),
            (1, "server CPU µs/delivery", 3),
            (CHAT_P50, "p50 µs", 0),
            (CHAT_P99, "p99 µs", 0),
            (CHAT_P999, "p999 µs", 0),
        ] {
            let m = |name: &str| chat_bar(runs, name, r, d, col).0;
            let (a, b) = (m("edgechat"), m("peer"));
            let _ = writeln!(
                out,
                "| fan-out 1 → {r}, D = {d}: {what} | {} | {} | {} |",
                opt(a, places),
                opt(b, places),
                ratio(a, b)
            );
        }
    }
}

/// Panels from a figure table: one per row whose label matches `pick`.
fn table_panels(t: &Table, pick: impl Fn(&str) -> bool, log: bool) -> Vec<Panel> {
    // Series: the columns between the label and the first ratio column.
    let series: Vec<(usize, String)> = t
        .header
        .iter()
        .enumerate()
        .skip(1)
        .take_while(|(_, h)| !h.contains('/') && !h.contains("ratio") && !h.contains("goal"))
        .map(|(i, h)| (i, h.clone()))
        .collect();
    t.rows
        .iter()
        .filter(|r| r.first().is_some_and(|l| pick(l)))
        .map(|r| {
            let label = &r[0];
            let (title, unit) = match label.rsplit_once(": ") {
                Some((t, u)) => (t.to_string(), u.to_string()),
                None => (label.clone(), String::new()),
            };
            Panel {
                title,
                unit: unit.clone(),
                log,
                groups: vec![unit],
                series: series
                    .iter()
                    .map(|(i, h)| {
                        let v = r.get(*i).and_then(|c| cell_num(c));
                        (h.clone(), vec![(v, Vec::new())])
                    })
                    .collect(),
            }
        })
        .collect()
}

fn is_rate(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    l.contains("/s") || l.contains("per sec") || l.contains("handshakes")
}

fn is_latency(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["p50", "p99", "p999", "latency"]
        .iter()
        .any(|k| l.contains(k))
}

/// The markdown file with its headings one level down, or a note.
fn embed(dir: &Path, file: &str, script: &str, out: &mut String) -> Option<String> {
    match fs::read_to_string(dir.join(file)) {
        Ok(md) => {
            for line in md.lines() {
                if line.starts_with('#') {
                    let _ = writeln!(out, "##{line}");
                } else {
                    let _ = writeln!(out, "{line}");
                }
            }
            out.push('\n');
            Some(md)
        }
        Err(_) => {
            let _ = writeln!(
                out,
                "No `{file}` (`{script}` did not run, or did not finish).\n"
            );
            None
        }
    }
}

fn machine(load_start: &str, out: &mut String) {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let load: String = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str("| machine | |\n|---|---|\n");
    let _ = writeln!(out, "| nproc | {nproc} |");
    let _ = writeln!(out, "| CPU model | {cpu} |");
    let _ = writeln!(out, "| kernel | {kernel} |");
    if !load_start.is_empty() {
        let _ = writeln!(
            out,
            "| load average (1/5/15 min) at the start | {load_start} |"
        );
    }
    let _ = writeln!(out, "| load average (1/5/15 min) at the end | {load} |\n");
}

struct Args {
    dir: PathBuf,
    load_start: String,
    secs: String,
    build_secs: String,
    commit: String,
    mode: String,
}

fn args() -> Args {
    let mut a = Args {
        dir: PathBuf::from("target/bench"),
        load_start: String::new(),
        secs: String::new(),
        build_secs: String::new(),
        commit: String::new(),
        mode: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(val()),
            "--load-start" => a.load_start = val(),
            "--secs" => a.secs = val(),
            "--build-secs" => a.build_secs = val(),
            "--commit" => a.commit = val(),
            "--mode" => a.mode = val(),
            _ => {
                eprintln!(
                    "usage: bench_report [--dir DIR] [--load-start LOAD] [--secs S] \
                     [--build-secs S] [--commit C] [--mode M]"
                );
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() -> Res<()> {
    let a = args();
    let dir = &a.dir;
    fs::create_dir_all(dir)?;
    let mut md = String::from("# Benchmark report: edgechat beside its peers\n\n");
    if !a.commit.is_empty() || !a.secs.is_empty() {
        let quick = a.mode == "quick";
        let _ = writeln!(
            md,
            "Commit {}, `scripts/bench.sh`{}: {} s of measurements (bound: {} s), after a \
             release build of {} s that the bound leaves out. {}Servers on CPU 0, the load \
             on CPU 1, 127.0.0.1 only.\n",
            if a.commit.is_empty() { "?" } else { &a.commit },
            if quick { " --quick" } else { "" },
            if a.secs.is_empty() { "?" } else { &a.secs },
            if quick { 120 } else { 600 },
            if a.build_secs.is_empty() {
                "?"
            } else {
                &a.build_secs
            },
            if quick {
                "One round per figure (--quick), not the median of three; syscall and \
                 instruction counts for edgechat and its first peer only, at small counts. "
            } else {
                ""
            },
        );
    }
    machine(&a.load_start, &mut md);
    let mut charts = Vec::new();

    // Echo.
    md.push_str("## Echo over plain TCP\n\n");
    embed(dir, "echo-compare.md", "scripts/echo-compare.sh", &mut md);
    let runs = read_runs(&dir.join("echo-compare/runs.tsv"));
    if !runs.is_empty() {
        let path = dir.join("echo-throughput.svg");
        chart(
            &path,
            "Echo throughput (bar: median; dot: one run)",
            &[
                runs_panel(
                    &runs,
                    &ECHO,
                    "pingpong 64 B × 50",
                    "msgs/s",
                    false,
                    &[("msgs/s", "pp50", "msgs_per_sec")],
                ),
                runs_panel(
                    &runs,
                    &ECHO,
                    "stream 16 KiB × 1",
                    "MB/s",
                    false,
                    &[("MB/s", "st1", "mb_per_sec")],
                ),
                runs_panel(
                    &runs,
                    &ECHO,
                    "stream 16 KiB × 50",
                    "MB/s",
                    false,
                    &[("MB/s", "st50", "mb_per_sec")],
                ),
            ],
        )?;
        charts.push(path);
        let path = dir.join("echo-latency.svg");
        let pct = [("p50", "p50_us"), ("p99", "p99_us"), ("p999", "p999_us")];
        let groups = |load: &'static str| -> Vec<(&'static str, &'static str, &'static str)> {
            pct.iter().map(|(l, k)| (*l, load, *k)).collect()
        };
        chart(
            &path,
            "Echo latency percentiles, log scale (bar: median; dot: one run)",
            &[
                runs_panel(
                    &runs,
                    &ECHO,
                    "pingpong 64 B × 50",
                    "µs",
                    true,
                    &groups("pp50"),
                ),
                runs_panel(
                    &runs,
                    &ECHO,
                    "pingpong 64 B × 1",
                    "µs",
                    true,
                    &groups("pp1"),
                ),
                runs_panel(
                    &runs,
                    &ECHO,
                    "stream 16 KiB × 50",
                    "µs",
                    true,
                    &groups("st50"),
                ),
            ],
        )?;
        charts.push(path);
    }

    // Chat.
    md.push_str("## Chat fan-out\n\n");
    let cruns = chat_runs(dir);
    if !cruns.is_empty() {
        chat_table(&cruns, &mut md);
        md.push('\n');
        let path = dir.join("chat-throughput.svg");
        chart(
            &path,
            "Chat fan-out, 1 sender, R receivers, D lines in flight (log scale)",
            &[
                chat_panel(&cruns, "delivered lines/s", "lines/s", 0),
                chat_panel(&cruns, "server CPU per delivery", "µs", 1),
            ],
        )?;
        charts.push(path);
        let path = dir.join("chat-latency.svg");
        let panels: Vec<Panel> = chat_configs(&cruns)
            .into_iter()
            .map(|(r, d)| chat_pct_panel(&cruns, r, d))
            .collect();
        chart(
            &path,
            "Chat delivery latency percentiles, sent to delivered, log scale \
             (bar: median; dot: one run)",
            &panels,
        )?;
        charts.push(path);
    }
    if let Ok(text) = fs::read_to_string(dir.join("chat-compare.md")) {
        // The callgrind and idle figures (already figure | ours | peer | ratio).
        for t in tables(&text)
            .iter()
            .filter(|t| t.header.first().is_some_and(|h| h == "figure"))
        {
            let _ = writeln!(md, "| {} |", t.header.join(" | "));
            let _ = writeln!(md, "|---{}|", "|---:".repeat(t.header.len() - 1));
            for r in &t.rows {
                let _ = writeln!(md, "| {} |", r.join(" | "));
            }
            md.push('\n');
        }
        md.push_str(
            "Fan-out rows: medians of the rounds in `chat-compare/runs.txt`; \
             server on CPU 0, `edgechat bench --mode chat` on CPU 1.\n\n",
        );
        for line in text.lines().filter(|l| l.starts_with("load average")) {
            let _ = writeln!(md, "{line}\n");
        }
    } else if cruns.is_empty() {
        md.push_str("Not measured: no `chat-compare.md` (`scripts/chat-compare.sh`).\n\n");
    }

    // TLS: the raw runs when kept (the table is written only at the end of
    // the script, the runs as they come), else the table's rows.
    md.push_str("## Echo over TLS\n\n");
    let truns = read_runs(&dir.join("tls-compare/runs.tsv"));
    let text = embed(dir, "tls-compare.md", "scripts/tls-compare.sh", &mut md);
    if text.is_none() && !truns.is_empty() {
        md.push_str("From the runs `scripts/tls-compare.sh` finished (it was cut short):\n\n");
        runs_table(&truns, &TLS, TLS_ROWS, &mut md);
    }
    let (rate, lat): (Vec<Panel>, Vec<Panel>) = if !truns.is_empty() {
        let one = |unit: &str, load: &str, key: &str| -> Vec<(String, String, String)> {
            vec![(unit.to_string(), load.to_string(), key.to_string())]
        };
        let pct = |load: &str| -> Vec<(String, String, String)> {
            [("p50", "p50_us"), ("p99", "p99_us"), ("p999", "p999_us")]
                .iter()
                .map(|(l, k)| (l.to_string(), load.to_string(), k.to_string()))
                .collect()
        };
        (
            vec![
                runs_panel_owned(
                    &truns,
                    &TLS,
                    "pingpong 64 B × 50",
                    "msgs/s",
                    false,
                    &one("msgs/s", "pp50", "msgs_per_sec"),
                ),
                runs_panel_owned(
                    &truns,
                    &TLS,
                    "stream 16 KiB × 1",
                    "MB/s",
                    false,
                    &one("MB/s", "st1", "mb_per_sec"),
                ),
                runs_panel_owned(
                    &truns,
                    &TLS,
                    "full handshakes",
                    "handshakes/s",
                    false,
                    &one("handshakes/s", "hsfull", "handshakes_per_sec"),
                ),
                runs_panel_owned(
                    &truns,
                    &TLS,
                    "resumed handshakes",
                    "handshakes/s",
                    false,
                    &one("handshakes/s", "hsres", "handshakes_per_sec"),
                ),
            ],
            vec![
                runs_panel_owned(&truns, &TLS, "pingpong 64 B × 50", "µs", true, &pct("pp50")),
                runs_panel_owned(
                    &truns,
                    &TLS,
                    "full handshake, connect to echo",
                    "µs",
                    true,
                    &pct("hsfull"),
                ),
                runs_panel_owned(
                    &truns,
                    &TLS,
                    "resumed handshake, connect to echo",
                    "µs",
                    true,
                    &pct("hsres"),
                ),
            ],
        )
    } else {
        let ts = text.as_deref().map(tables).unwrap_or_default();
        (
            ts.iter()
                .flat_map(|t| table_panels(t, is_rate, false))
                .take(6)
                .collect(),
            ts.iter()
                .flat_map(|t| table_panels(t, is_latency, true))
                .take(6)
                .collect(),
        )
    };
    for (panels, file, title) in [
        (
            rate,
            "tls-throughput.svg",
            "TLS echo throughput (bar: median; dot: one run)",
        ),
        (
            lat,
            "tls-latency.svg",
            "TLS latency percentiles, log scale (bar: median; dot: one run)",
        ),
    ] {
        if !panels.is_empty() {
            let path = dir.join(file);
            chart(&path, title, &panels)?;
            charts.push(path);
        }
    }

    md.push_str("## Charts\n\n");
    for c in &charts {
        let name = c.file_name().unwrap().to_string_lossy();
        let _ = writeln!(md, "![{name}]({name})\n");
    }
    fs::write(dir.join("report.md"), &md)?;
    eprintln!("wrote {}", dir.join("report.md").display());
    for c in &charts {
        eprintln!("wrote {}", c.display());
    }
    Ok(())
}
