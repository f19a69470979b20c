//! Turns the comparison scripts' outputs into one report and its charts:
//! `target/bench/report.md` and `target/bench/*.svg` (drawn with plotters).
//!
//! ```text
//! cargo run --release --example bench_report -- [--dir target/bench] \
//!     [--load-start "1.0 0.9 0.8"] [--secs 540] [--build-secs 2] [--commit abc1234] \
//!     [--mode full] [--bound 900]
//! ```
//!
//! It reads whatever is there, and says what is not:
//!
//! - echo (`scripts/echo-compare.sh`): the raw runs in
//!   `echo-compare/runs.tsv` (name, round, load, run-queue %, the JSON line
//!   of `edgechat bench`) for the charts, and `echo-compare.md`'s table;
//! - chat (`scripts/chat-compare.sh`, as run by `scripts/bench.sh`): the raw
//!   runs in `chat-compare/runs.txt` (name, receivers, depth, lines/s, CPU
//!   µs per delivery, p99, p50 and p999 µs, deliveries/s, generator CPU µs
//!   per delivery and % of its core) for the tables and charts of every
//!   server (edgechat, the tokio peer, Redis, NATS, and the raw epoll floor
//!   as a reference), and the counts table of `chat-compare.md`;
//! - TLS (`scripts/tls-compare.sh`): the raw runs in `tls-compare/runs.tsv`
//!   (name `ours` or `peer`, round, load, ..., the JSON line) for the charts,
//!   and `tls-compare.md`'s table; with no runs, the table's rows are charted
//!   (rates as throughput, p50/p99/p999 as latency); with runs but no table
//!   (the script was cut short), a table is made from the runs.
//!
//! Each figure that has a target is shown beside it, in words: the echo and
//! TLS scripts' target lists are rewritten that way, and the chat targets
//! ([`CHAT_TARGETS`]) are checked here against the best peer.
//!
//! Charts: `echo-throughput.svg`, `echo-latency.svg`, `chat-throughput.svg`,
//! `chat-cpu.svg`, `chat-latency.svg`, `tls-throughput.svg`,
//! `tls-latency.svg`; each bar is the median, each dot one run where the
//! raw runs are kept; a floor (a reference, not a peer) is an outlined bar.
//! Every chart names each server in its legend and carries the commit and
//! the machine (CPU model, cores) at its foot.

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
/// Fill colours, in the order the series first appear in a chart.
const COLORS: [RGBColor; 5] = [
    RGBColor(214, 69, 40),
    RGBColor(60, 110, 180),
    RGBColor(90, 160, 90),
    RGBColor(200, 140, 30),
    RGBColor(150, 90, 170),
];
/// A floor's outline: a reference, not a competitor.
const FLOOR: RGBColor = RGBColor(90, 90, 90);

/// Text sizes in px: no label under 12.
const TITLE_PX: u32 = 20;
const PANEL_TITLE_PX: u32 = 16;
const LABEL_PX: u32 = 13;
const VALUE_PX: u32 = 12;

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

/// What every chart carries at its foot: the commit and the machine.
struct Meta {
    foot: String,
}

/// A series drawn as a reference (outlined), not as a competitor.
fn is_floor(name: &str) -> bool {
    name.contains("floor")
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

/// The y range of a log panel: from the decade just below the lowest value
/// (bars start at a labelled tick), to a little above the highest, room
/// for its label and no more, so the panel's height is the data's.
fn log_range(min: f64, max: f64) -> (f64, f64) {
    let lo = (min.log10() - 0.05).floor();
    let hi = max.log10();
    (10f64.powf(lo), 10f64.powf(hi + 0.12 * (hi - lo) + 0.05))
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    p: &Panel,
    colors: &[(String, RGBColor)],
) -> Res<()> {
    let all: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, g)| g.iter().flat_map(|(m, runs)| m.iter().chain(runs)))
        .copied()
        .filter(|v| v.is_finite() && (!p.log || *v > 0.0))
        .collect();
    let Some(max) = all.iter().copied().reduce(f64::max) else {
        area.titled(
            &format!("{} (no data)", p.title),
            ("sans-serif", PANEL_TITLE_PX),
        )?;
        return Ok(());
    };
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let n = p.groups.len().max(1) as f64;
    let mut b = ChartBuilder::on(area);
    b.caption(&p.title, ("sans-serif", PANEL_TITLE_PX))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(64);
    let label_font = ("sans-serif", LABEL_PX);
    if p.log {
        let (lo, hi) = log_range(min, max);
        let mut chart = b.build_cartesian_2d(0f64..n, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_labels(if (hi / lo).log10() < 1.5 { 12 } else { 5 })
            .y_desc(&p.unit)
            .y_label_style(label_font)
            .axis_desc_style(label_font)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        bars(&mut chart, p, lo, area, colors)
    } else {
        let mut chart = b.build_cartesian_2d(0f64..n, 0f64..max * 1.15)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_desc(&p.unit)
            .y_label_style(label_font)
            .axis_desc_style(label_font)
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        bars(&mut chart, p, 0.0, area, colors)
    }
}

fn color_of(colors: &[(String, RGBColor)], name: &str) -> RGBColor {
    colors
        .iter()
        .find(|(n, _)| n == name)
        .map_or(FLOOR, |(_, c)| *c)
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
    colors: &[(String, RGBColor)],
) -> Res<()>
where
    Y: Ranged<ValueType = f64>,
{
    let k = p.series.len().max(1) as f64;
    let width = 0.84 / k;
    for (s, (name, groups)) in p.series.iter().enumerate() {
        let color = color_of(colors, name);
        let floor = is_floor(name);
        let x0 = |g: usize| g as f64 + 0.08 + s as f64 * width;
        chart.draw_series(groups.iter().enumerate().filter_map(|(g, (m, _))| {
            m.map(|m| {
                let style = if floor {
                    color.stroke_width(2)
                } else {
                    color.filled()
                };
                Rectangle::new([(x0(g), base), (x0(g) + width * 0.9, m)], style)
            })
        }))?;
        chart.draw_series(groups.iter().enumerate().flat_map(|(g, (_, runs))| {
            runs.iter()
                .filter(|v| v.is_finite() && **v > base)
                .map(move |v| Circle::new((x0(g) + width * 0.45, *v), 2, BLACK.filled()))
        }))?;
        // Each median's label, above its bar and above every run's dot.
        chart.draw_series(groups.iter().enumerate().filter_map(|(g, (m, runs))| {
            m.map(|m| {
                let top = runs
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(m, f64::max);
                EmptyElement::at((x0(g) + width * 0.45, top))
                    + Text::new(
                        fmt_num(m),
                        (0, -4),
                        ("sans-serif", VALUE_PX)
                            .into_font()
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
            })
        }))?;
    }
    // Group names under the axis, centred on their group.
    let style = ("sans-serif", LABEL_PX)
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
    Ok(())
}

/// The legend row under the title: a swatch and the name of each server.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, colors: &[(String, RGBColor)]) -> Res<()> {
    let font: TextStyle = ("sans-serif", LABEL_PX).into();
    let widths: Vec<u32> = colors
        .iter()
        .map(|(n, _)| {
            area.estimate_text_size(n, &font)
                .map_or(8 * n.len() as u32, |s| s.0)
        })
        .collect();
    let total: u32 = widths.iter().map(|w| w + 40).sum();
    let mut x = (area.dim_in_pixel().0.saturating_sub(total) / 2) as i32;
    for ((name, color), w) in colors.iter().zip(&widths) {
        let style = if is_floor(name) {
            color.stroke_width(2)
        } else {
            color.filled()
        };
        area.draw(&Rectangle::new([(x, 8), (x + 16, 22)], style))?;
        area.draw(&Text::new(
            name.clone(),
            (x + 22, 15),
            font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += *w as i32 + 40;
    }
    Ok(())
}

/// One SVG of panels, `cols` to a row, under a title and one legend for
/// all of them, with the commit and the machine at the foot. Series with
/// no value at all are left out (and out of the legend).
fn chart(path: &Path, title: &str, panels: &[Panel], cols: usize, meta: &Meta) -> Res<()> {
    let panels: Vec<Panel> = panels
        .iter()
        .map(|p| Panel {
            title: p.title.clone(),
            unit: p.unit.clone(),
            log: p.log,
            groups: p.groups.clone(),
            series: p
                .series
                .iter()
                .filter(|(_, g)| g.iter().any(|(m, _)| m.is_some()))
                .cloned()
                .collect(),
        })
        .collect();
    let mut colors: Vec<(String, RGBColor)> = Vec::new();
    for p in &panels {
        for (name, _) in &p.series {
            if !colors.iter().any(|(n, _)| n == name) {
                let c = if is_floor(name) {
                    FLOOR
                } else {
                    let used = colors.iter().filter(|(n, _)| !is_floor(n)).count();
                    COLORS[used % COLORS.len()]
                };
                colors.push((name.clone(), c));
            }
        }
    }
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let panel_w = if cols == 1 { 1100 } else { 540 };
    let (w, h) = ((panel_w * cols as u32).max(720), 360 * rows as u32 + 100);
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", TITLE_PX))?;
    let (top, rest) = root.split_vertically(30);
    legend(&top, &colors)?;
    let body_h = rest.dim_in_pixel().1.saturating_sub(26);
    let (body, foot) = rest.split_vertically(body_h);
    foot.draw(&Text::new(
        meta.foot.clone(),
        (10, 6),
        ("sans-serif", VALUE_PX)
            .into_font()
            .color(&RGBColor(60, 60, 60)),
    ))?;
    let areas = body.split_evenly((rows, cols));
    for (p, area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, p, &colors)?;
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

/// Chat: (name, receivers, depth) → per run, the columns of `runs.txt`
/// after those three (NaN where an older `runs.txt` has fewer).
type ChatRuns = BTreeMap<(String, u32, u32), Vec<[f64; CHAT_COLS]>>;

/// Columns of a [`ChatRuns`] entry.
const CHAT_COLS: usize = 8;
const C_LINES: usize = 0;
const C_CPU: usize = 1;
const C_P99: usize = 2;
const C_DELIV: usize = 5;
const C_GEN: usize = 6;
const C_GEN_PCT: usize = 7;

/// The chat servers: the name in `runs.txt`, the name shown, and whether it
/// is a peer (edgechat is ours, the floor a reference).
const CHAT: [(&str, &str, bool); 6] = [
    ("edgechat", "edgechat", false),
    ("tokio", "tokio buffered", true),
    ("redis", "Redis pub/sub", true),
    ("nats", "NATS", true),
    ("floor", "raw epoll floor", false),
    ("peer", "tokio chat example (older runs)", true),
];

/// A chat target: edgechat's figure at the loads whose depth is in
/// `depths`, against the best peer's at the same load.
struct Target {
    figure: &'static str,
    col: usize,
    depths: std::ops::RangeInclusive<u32>,
    lower_is_better: bool,
    /// edgechat / best peer: at most this (lower is better) or at least.
    bound: f64,
}

/// What edgechat's chat fan-out is meant to reach, against the best peer.
/// At D = 1 every server pays about a syscall per delivery, so the margin
/// there is smaller than where lines arrive in bursts.
const CHAT_TARGETS: [Target; 3] = [
    Target {
        figure: "server CPU per delivery",
        col: C_CPU,
        depths: 1..=1,
        lower_is_better: true,
        bound: 0.9,
    },
    Target {
        figure: "server CPU per delivery",
        col: C_CPU,
        depths: 16..=u32::MAX,
        lower_is_better: true,
        bound: 0.67,
    },
    Target {
        figure: "deliveries per second",
        col: C_DELIV,
        depths: 256..=256,
        lower_is_better: false,
        bound: 1.5,
    },
];
/// edgechat's user-space instructions per delivery, at most this times the
/// tokio peer's; its RSS per idle chat client, at most this many bytes.
const IR_TARGET: f64 = 0.33;
const RSS_TARGET: f64 = 1024.0;

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
        let (Ok(r), Ok(d)) = (f[1].parse::<u32>(), f[2].parse()) else {
            continue;
        };
        let mut row = [f64::NAN; CHAT_COLS];
        for (i, v) in row.iter_mut().enumerate() {
            *v = f
                .get(i + 3)
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN);
        }
        if row[C_DELIV].is_nan() {
            row[C_DELIV] = row[C_LINES] * f64::from(r); // older runs.txt: every line reached all
        }
        runs.entry((f[0].to_string(), r, d)).or_default().push(row);
    }
    runs
}

fn chat_configs(runs: &ChatRuns) -> Vec<(u32, u32)> {
    let mut c: Vec<(u32, u32)> = runs.keys().map(|k| (k.1, k.2)).collect();
    c.sort();
    c.dedup();
    c
}

/// The chat servers with runs, in [`CHAT`] order.
fn chat_servers(runs: &ChatRuns) -> Vec<(&'static str, &'static str, bool)> {
    CHAT.iter()
        .filter(|(name, _, _)| runs.keys().any(|k| k.0 == *name))
        .copied()
        .collect()
}

/// Column `col` of server `name`'s runs at R = `r`, D = `d`: their median,
/// and every run's value (missing ones left out).
fn chat_bar(runs: &ChatRuns, name: &str, r: u32, d: u32, col: usize) -> Bar {
    let vals: Vec<f64> = runs
        .get(&(name.to_string(), r, d))
        .map(|v| v.iter().map(|x| x[col]).filter(|v| v.is_finite()).collect())
        .unwrap_or_default();
    (median(&vals), vals)
}

/// The best peer's median of `col` at R, D: its shown name and value.
fn best_peer(
    runs: &ChatRuns,
    r: u32,
    d: u32,
    col: usize,
    lower_is_better: bool,
) -> Option<(&'static str, f64)> {
    CHAT.iter()
        .filter(|c| c.2)
        .filter_map(|c| chat_bar(runs, c.0, r, d, col).0.map(|v| (c.1, v)))
        .reduce(|a, b| if (b.1 < a.1) == lower_is_better { b } else { a })
}

/// One panel per receiver count of one figure: a group per depth, a bar
/// per server.
fn chat_panels(runs: &ChatRuns, unit: &str, col: usize) -> Vec<Panel> {
    let configs = chat_configs(runs);
    let mut receivers: Vec<u32> = configs.iter().map(|c| c.0).collect();
    receivers.dedup();
    receivers
        .into_iter()
        .map(|r| {
            let depths: Vec<u32> = configs.iter().filter(|c| c.0 == r).map(|c| c.1).collect();
            let series = chat_servers(runs)
                .iter()
                .map(|(name, shown, _)| {
                    let per = depths
                        .iter()
                        .map(|&d| chat_bar(runs, name, r, d, col))
                        .collect();
                    (shown.to_string(), per)
                })
                .collect();
            Panel {
                title: format!("1 sender → {r} receivers"),
                unit: unit.to_string(),
                log: true,
                groups: depths.iter().map(|&d| in_flight(d)).collect(),
                series,
            }
        })
        .collect()
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

/// One table of a chat figure: a row per load, a column per server, then
/// edgechat against the best peer (with its name) and against the floor.
/// `lower`: whether lower is better; `None` for a figure of the load, not
/// of the server: no ratios.
fn chat_table(
    runs: &ChatRuns,
    title: &str,
    col: usize,
    places: usize,
    lower: Option<bool>,
    out: &mut String,
) {
    let servers = chat_servers(runs);
    let _ = writeln!(out, "{title}\n");
    let names: Vec<&str> = servers.iter().map(|s| s.1).collect();
    let (extra, extra_sep) = match lower {
        Some(_) => (" edgechat / best peer | edgechat / floor |", "---|---:|"),
        None => ("", ""),
    };
    let _ = writeln!(
        out,
        "| receivers | lines in flight | {} |{extra}",
        names.join(" | ")
    );
    let _ = writeln!(out, "|---:|---:|{}{extra_sep}", "---:|".repeat(names.len()));
    for (r, d) in chat_configs(runs) {
        let m = |name: &str| chat_bar(runs, name, r, d, col).0;
        let cells: Vec<String> = servers
            .iter()
            .map(|(name, _, _)| {
                let v = opt(m(name), places);
                match chat_bar(runs, name, r, d, C_GEN_PCT).0 {
                    Some(pct) if col == C_GEN && v != "–" => format!("{v} ({pct:.0} %)"),
                    _ => v,
                }
            })
            .collect();
        let _ = write!(out, "| {r} | {d} | {} |", cells.join(" | "));
        if let Some(lower) = lower {
            let ours = m("edgechat");
            let vs_best = match (ours, best_peer(runs, r, d, col, lower)) {
                (Some(_), Some((who, b))) => format!("{}, {who}", ratio(ours, Some(b))),
                _ => "–".to_string(),
            };
            let _ = write!(out, " {vs_best} | {} |", ratio(ours, m("floor")));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// edgechat's chat figures beside their targets, in words.
fn chat_targets(runs: &ChatRuns, counts: Option<&Table>, out: &mut String) {
    let mut lines = Vec::new();
    for t in &CHAT_TARGETS {
        for (r, d) in chat_configs(runs)
            .into_iter()
            .filter(|c| t.depths.contains(&c.1))
        {
            let ours = chat_bar(runs, "edgechat", r, d, t.col).0;
            let (Some(ours), Some((who, best))) =
                (ours, best_peer(runs, r, d, t.col, t.lower_is_better))
            else {
                continue;
            };
            let x = ours / best;
            let ok = if t.lower_is_better {
                x <= t.bound
            } else {
                x >= t.bound
            };
            let places = if t.col == C_CPU { 3 } else { 0 };
            lines.push(format!(
                "- {}, 1 sender → {r} receivers, {}: {x:.2}× the best peer's \
                 (edgechat {}, {who} {}); target: {} {:.2}× ({})",
                capitalize(t.figure),
                in_flight(d),
                fmt_fig(ours, places),
                fmt_fig(best, places),
                if t.lower_is_better {
                    "at most"
                } else {
                    "at least"
                },
                t.bound,
                verdict(ok),
            ));
        }
    }
    for row in counts.map(|t| t.rows.as_slice()).unwrap_or_default() {
        let label = row.first().map_or("", String::as_str);
        let v = |i: usize| row.get(i).and_then(|c| cell_num(c));
        if label.starts_with("user-space instructions per delivery") {
            if let (Some(a), Some(b)) = (v(1), v(2)) {
                lines.push(format!(
                    "- User-space instructions per delivery: {:.2}× the tokio peer's \
                     ({a:.0} against {b:.0}); target: at most {IR_TARGET:.2}× ({})",
                    a / b,
                    verdict(a / b <= IR_TARGET),
                ));
            }
        } else if label.starts_with("RSS per idle chat client") {
            if let Some(a) = v(1) {
                lines.push(format!(
                    "- Memory per idle chat client: {a:.0} B; target: at most {RSS_TARGET:.0} B ({})",
                    verdict(a <= RSS_TARGET),
                ));
            }
        }
    }
    if !lines.is_empty() {
        out.push_str("### How edgechat stands against its targets\n\n");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        out.push('\n');
    }
}

/// "1 line in flight", "16 lines in flight".
fn in_flight(d: u32) -> String {
    if d == 1 {
        "1 line in flight".to_string()
    } else {
        format!("{d} lines in flight")
    }
}

fn fmt_fig(v: f64, places: usize) -> String {
    if places > 0 {
        format!("{v:.places$} µs")
    } else {
        format!("{v:.0}/s")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "within the target"
    } else {
        "not within the target"
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

/// A target line of the echo and TLS scripts, `- MARK: TEXT (FIGURE)`
/// (MARK: met, MISSED or –), as the figure beside its target in words:
/// `- Subject: FIGURE; target: at most X (within the target)`. Other lines
/// come back as they are.
fn target_line(line: &str) -> String {
    let Some((mark, rest)) = line.strip_prefix("- ").and_then(|l| l.split_once(": ")) else {
        return line.to_string();
    };
    let verdict = match mark {
        "met" => verdict(true),
        "MISSED" => verdict(false),
        "–" | "-" => "not measured",
        _ => return line.to_string(),
    };
    // The figure: the last parenthesised group, which may hold parentheses.
    let (text, fig) = match rest.strip_suffix(')') {
        Some(body) => {
            let mut depth = 0;
            let mut open = None;
            for (i, ch) in body.char_indices().rev() {
                match ch {
                    ')' => depth += 1,
                    '(' if depth == 0 => {
                        open = Some(i);
                        break;
                    }
                    '(' => depth -= 1,
                    _ => {}
                }
            }
            match open {
                Some(i) => (body[..i].trim_end(), &body[i + 1..]),
                None => (rest, ""),
            }
        }
        None => (rest, ""),
    };
    // Subject and target: at the first ≤, ≥ or "not behind".
    let markers = [
        ("≤", "at most"),
        ("≥", "at least"),
        (" not behind ", "not behind"),
    ];
    let found = markers
        .iter()
        .filter_map(|(m, w)| text.find(m).map(|i| (i, *m, *w)))
        .min_by_key(|f| f.0);
    let (subject, target) = match found {
        Some((0, m, w)) => {
            // "≤ 256 B RSS per ...": the value and its unit, then the subject.
            let words: Vec<&str> = text[m.len()..].split_whitespace().collect();
            let units = ["B", "KiB", "MiB", "ms", "µs", "s", "%", "×"];
            let n = words
                .iter()
                .take_while(|w| w.parse::<f64>().is_ok() || units.contains(w))
                .count();
            (
                words[n..].join(" "),
                format!("{w} {}", words[..n].join(" ")),
            )
        }
        Some((i, m, w)) => (
            text[..i].trim().to_string(),
            format!("{w} {}", text[i + m.len()..].trim()),
        ),
        None => (text.to_string(), String::new()),
    };
    // "0.88×: 5.25 vs 5.95 µs" reads "0.88× tokio (5.25 vs 5.95 µs)" when
    // the target is "at most 0.97× tokio".
    let reference = target
        .split_once("× ")
        .map(|(_, r)| format!(" {r}"))
        .filter(|r| !r.trim_start().starts_with('('))
        .unwrap_or_default();
    let fig = match fig.split_once("×: ") {
        Some((x, detail)) => format!("{x}×{reference} ({detail})"),
        None => fig.to_string(),
    };
    let mut out = format!("- {}: {fig}", capitalize(&subject));
    if !target.is_empty() {
        let _ = write!(out, "; target: {target}");
    }
    let _ = write!(out, " ({verdict})");
    out
}

/// A script's markdown with its target list in words: a `Goals` heading
/// becomes "How edgechat stands against its targets", and each of its
/// lines goes through [`target_line`].
fn plain_targets(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut in_targets = false;
    for line in md.lines() {
        if line.starts_with('#') {
            let level = line.chars().take_while(|&c| c == '#').count();
            in_targets = line[level..].trim_start().starts_with("Goals");
            if in_targets {
                let _ = writeln!(
                    out,
                    "{} How edgechat stands against its targets",
                    "#".repeat(level)
                );
                continue;
            }
        }
        if in_targets {
            let _ = writeln!(out, "{}", target_line(line));
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
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
            let md = plain_targets(&md);
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

/// The CPU model (from /proc/cpuinfo) and the number of cores.
fn cpu() -> (String, usize) {
    let model = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    (model, cores)
}

fn machine(load_start: &str, out: &mut String) {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let (cpu, nproc) = cpu();
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
    bound: String,
}

fn args() -> Args {
    let mut a = Args {
        dir: PathBuf::from("target/bench"),
        load_start: String::new(),
        secs: String::new(),
        build_secs: String::new(),
        commit: String::new(),
        mode: String::new(),
        bound: String::new(),
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
            "--bound" => a.bound = val(),
            _ => {
                eprintln!(
                    "usage: bench_report [--dir DIR] [--load-start LOAD] [--secs S] \
                     [--build-secs S] [--commit C] [--mode M] [--bound S]"
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
            if a.bound.is_empty() { "?" } else { &a.bound },
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
    let (model, cores) = cpu();
    let commit = if a.commit.is_empty() {
        std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "unknown".into())
    } else {
        a.commit.clone()
    };
    let meta = Meta {
        foot: format!(
            "commit {commit} · {model}, {cores} cores · bar: median of the runs, dot: one run"
        ),
    };

    // Echo.
    md.push_str("## Echo over plain TCP\n\n");
    embed(dir, "echo-compare.md", "scripts/echo-compare.sh", &mut md);
    let runs = read_runs(&dir.join("echo-compare/runs.tsv"));
    if !runs.is_empty() {
        let path = dir.join("echo-throughput.svg");
        chart(
            &path,
            "Echo throughput (higher is better)",
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
            3,
            &meta,
        )?;
        charts.push(path);
        let path = dir.join("echo-latency.svg");
        let pct = [("p50", "p50_us"), ("p99", "p99_us"), ("p999", "p999_us")];
        let groups = |load: &'static str| -> Vec<(&'static str, &'static str, &'static str)> {
            pct.iter().map(|(l, k)| (*l, load, *k)).collect()
        };
        chart(
            &path,
            "Echo latency percentiles (lower is better; log scale)",
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
            3,
            &meta,
        )?;
        charts.push(path);
    }

    // Chat.
    md.push_str("## Chat fan-out\n\n");
    let cruns = chat_runs(dir);
    let ctext = fs::read_to_string(dir.join("chat-compare.md")).ok();
    // The counts and idle figures (figure | edgechat | tokio | ratio).
    let counts: Vec<Table> = ctext
        .as_deref()
        .map(tables)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.header.first().is_some_and(|h| h == "figure"))
        .collect();
    if !cruns.is_empty() {
        let rounds = cruns.values().map(Vec::len).max().unwrap_or(0);
        let _ = writeln!(
            md,
            "One sender and R receivers in one room; the sender keeps D lines in flight \
             (a line leaves once every receiver has it); 64-byte lines. A delivery is one \
             line reaching one receiver. Each figure is the median of {rounds} run(s), a \
             fresh server each time, the server on CPU 0 and `edgechat bench --mode chat` \
             on CPU 1. The peers: the tokio server an engineer would deploy (buffered, one \
             `Arc` per line, one flush per burst: `examples/peer_tokio_chat.rs`), Redis \
             pub/sub and NATS, each on one core. The raw epoll floor \
             (`examples/floor_relay.rs`) is the least a relay can do per delivery: a \
             reference, not a peer. \"Best peer\" is the best of the peers at that load.\n"
        );
        chat_targets(&cruns, counts.first(), &mut md);
        chat_table(
            &cruns,
            "#### Server CPU per delivery, µs (lower is better)",
            C_CPU,
            3,
            Some(true),
            &mut md,
        );
        chat_table(
            &cruns,
            "#### Deliveries per second (higher is better)",
            C_DELIV,
            0,
            Some(false),
            &mut md,
        );
        chat_table(
            &cruns,
            "#### p99 latency, sent to delivered, µs (lower is better)",
            C_P99,
            0,
            Some(true),
            &mut md,
        );
        chat_table(
            &cruns,
            "#### The load generator's own CPU per delivery, µs (and % of its core)\n\n\
             Context, not a server figure: where the generator's core is the busier one, \
             it, not the server, bounds deliveries per second.",
            C_GEN,
            3,
            None,
            &mut md,
        );
        for (file, title, unit, col) in [
            (
                "chat-throughput.svg",
                "Chat fan-out: deliveries per second (higher is better; log scale)",
                "deliveries/s",
                C_DELIV,
            ),
            (
                "chat-cpu.svg",
                "Chat fan-out: server CPU per delivery (lower is better; log scale)",
                "µs",
                C_CPU,
            ),
            (
                "chat-latency.svg",
                "Chat fan-out: p99 latency, sent to delivered (lower is better; log scale)",
                "µs",
                C_P99,
            ),
        ] {
            let path = dir.join(file);
            chart(&path, title, &chat_panels(&cruns, unit, col), 1, &meta)?;
            charts.push(path);
        }
    } else if counts.is_empty() {
        md.push_str("Not measured: no `chat-compare/runs.txt` (`scripts/chat-compare.sh`).\n\n");
    }
    if cruns.is_empty() && !counts.is_empty() {
        chat_targets(&cruns, counts.first(), &mut md);
    }
    for t in &counts {
        md.push_str("#### Counts per delivery and idle clients, edgechat and the tokio peer\n\n");
        let _ = writeln!(md, "| {} |", t.header.join(" | "));
        let _ = writeln!(md, "|---{}|", "|---:".repeat(t.header.len() - 1));
        for r in &t.rows {
            let _ = writeln!(md, "| {} |", r.join(" | "));
        }
        md.push('\n');
    }
    for line in ctext
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("load average"))
    {
        let _ = writeln!(md, "{line}\n");
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
            "TLS echo throughput (higher is better)",
        ),
        (
            lat,
            "tls-latency.svg",
            "TLS latency percentiles (lower is better; log scale)",
        ),
    ] {
        if !panels.is_empty() {
            let path = dir.join(file);
            let cols = if panels.len() == 4 { 2 } else { 3 };
            chart(&path, title, &panels, cols, &meta)?;
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
