//! The report's charts as SVG text, drawn with plotters' SVG backend: score bars with CI
//! whiskers, the subset × model heatmap, margin histograms and length-bias scatter plots.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use super::HtmlError;

const FONT: &str = "sans-serif";
const BAR: RGBColor = RGBColor(70, 110, 180);
const WRONG: RGBColor = RGBColor(200, 80, 70);
const GRAY: RGBColor = RGBColor(150, 150, 150);
const EMPTY: RGBColor = RGBColor(235, 235, 235);

/// A chart drawing error (plotters writes to a string, so this is not expected).
fn chart_err<E: std::fmt::Debug>(chart: &str) -> impl Fn(E) -> HtmlError + '_ {
    move |e| HtmlError::Chart {
        chart: chart.to_string(),
        message: format!("{e:?}"),
    }
}

/// The backend's SVG without its `xmlns` attribute: inline `<svg>` in HTML gets the SVG
/// namespace from the parser, and the page holds no URL at all.
fn inline(svg: String) -> String {
    svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
}

/// Draws with `f` on a `w` × `h` SVG and returns it inline.
fn draw(
    chart: &str,
    (w, h): (u32, u32),
    f: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), HtmlError>,
) -> Result<String, HtmlError> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err(chart))?;
        f(&root)?;
        root.present().map_err(chart_err(chart))?;
    }
    Ok(inline(buf))
}

/// `s` cut to `max` characters, its end kept (`org/name`'s name is what tells models apart).
pub fn short(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let tail: String = s.chars().skip(n + 1 - max).collect();
    format!("…{tail}")
}

/// Pixels for a label area holding `labels` at font size 14 (11 px in the SVG: about 7 px
/// a character).
fn label_px<'a>(labels: impl Iterator<Item = &'a str>) -> u32 {
    let longest = labels.map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (longest * 7 + 16).clamp(40, 340)
}

/// An axis number without a `-0` (what `{:.2}` makes of tiny negatives).
fn tick(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// One bar: a model's value with its interval, all in [0, 1].
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub ci: Option<(f64, f64)>,
}

/// Row labels left of a plotting area of `n` equal rows (the first on top), drawn on `root`.
/// (Not plotters' segmented axes: they collapse to nothing with a single row.)
fn row_labels(
    root: &DrawingArea<SVGBackend, Shift>,
    (xs, ys): (std::ops::Range<i32>, std::ops::Range<i32>),
    labels: &[String],
    chart: &str,
) -> Result<(), HtmlError> {
    let h = f64::from(ys.end - ys.start) / labels.len().max(1) as f64;
    let style = (FONT, 14)
        .into_font()
        .into_text_style(root)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, l) in labels.iter().enumerate() {
        let y = ys.start + (h * (i as f64 + 0.5)).round() as i32;
        root.draw(&Text::new(l.as_str(), (xs.start - 6, y), &style))
            .map_err(chart_err(chart))?;
    }
    Ok(())
}

/// Horizontal bars of one metric, top to bottom as given, in percent, each with its 95 %
/// interval as a whisker; the value is written after the model's name.
pub fn bars(title: &str, bars: &[Bar]) -> Result<String, HtmlError> {
    let n = bars.len().max(1) as f64;
    let labels: Vec<String> = bars
        .iter()
        .map(|b| format!("{}  {:.1}", short(&b.label, 36), 100.0 * b.value))
        .collect();
    let left = label_px(labels.iter().map(String::as_str));
    let size = (left + 280, 58 + 20 * bars.len().max(1) as u32);
    // Row i spans y in [n - 1 - i, n - i]: the first bar on top.
    let row = |i: usize| n - 1.0 - i as f64;
    draw(title, size, |root| {
        let err = chart_err(title);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 17))
            .margin(6)
            .margin_right(14)
            .x_label_area_size(22)
            .y_label_area_size(left)
            .build_cartesian_2d(0f64..100f64, 0f64..n)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .light_line_style(WHITE)
            .bold_line_style(EMPTY)
            .x_labels(6)
            .x_label_style((FONT, 13))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let mut r = Rectangle::new(
                    [(0.0, row(i)), (100.0 * b.value, row(i) + 1.0)],
                    BAR.filled(),
                );
                r.set_margin(3, 3, 0, 0);
                r
            }))
            .map_err(&err)?;
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
                let (lo, hi) = b.ci?;
                Some(ErrorBar::new_horizontal(
                    row(i) + 0.5,
                    100.0 * lo,
                    100.0 * b.value,
                    100.0 * hi,
                    BLACK.stroke_width(1),
                    8,
                ))
            }))
            .map_err(&err)?;
        row_labels(
            root,
            chart.plotting_area().get_pixel_range(),
            &labels,
            title,
        )
    })
}

/// Where the heatmap's cells are in its SVG (pixels), for the page's tooltips.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Grid {
    pub x0: i32,
    pub x1: i32,
    pub y0: i32,
    pub y1: i32,
    pub width: u32,
    pub height: u32,
}

/// Rows (models, top to bottom) × columns (subsets) of accuracies in [0, 1], each cell
/// coloured (viridis) and labelled in percent; missing cells grey.
pub fn heatmap(
    rows: &[String],
    cols: &[String],
    values: &[Vec<Option<f64>>],
) -> Result<(String, Grid), HtmlError> {
    let (nr, nc) = (rows.len().max(1), cols.len().max(1));
    let rows: Vec<String> = rows.iter().map(|r| short(r, 36)).collect();
    let cols: Vec<String> = cols.iter().map(|c| short(c, 28)).collect();
    let left = label_px(rows.iter().map(String::as_str));
    let bottom = label_px(cols.iter().map(String::as_str));
    let size = (left + 38 * nc as u32 + 20, 16 + 24 * nr as u32 + bottom);
    let mut grid = None;
    let svg = draw("heatmap", size, |root| {
        let err = chart_err("heatmap");
        // Cell (r, c) spans x in [c, c + 1] and y in [nr - 1 - r, nr - r]: row 0 on top.
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(bottom)
            .y_label_area_size(left)
            .build_cartesian_2d(0f64..nc as f64, 0f64..nr as f64)
            .map_err(&err)?;
        let cells = values.iter().enumerate().flat_map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(move |(c, v)| (c as f64, (nr - 1 - r) as f64, *v))
        });
        chart
            .draw_series(cells.clone().map(|(x, y, v)| {
                let color = v.map_or(EMPTY, |a| ViridisRGB::get_color(a.clamp(0.0, 1.0)));
                let mut rect = Rectangle::new([(x, y), (x + 1.0, y + 1.0)], color.filled());
                rect.set_margin(1, 1, 1, 1);
                rect
            }))
            .map_err(&err)?;
        chart
            .draw_series(cells.map(|(x, y, v)| {
                let (text, ink) = match v {
                    Some(a) if a < 0.6 => (format!("{:.1}", 100.0 * a), WHITE),
                    Some(a) => (format!("{:.1}", 100.0 * a), BLACK),
                    None => ("–".to_string(), GRAY),
                };
                Text::new(
                    text,
                    (x + 0.5, y + 0.5),
                    (FONT, 13)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )
            }))
            .map_err(&err)?;
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        row_labels(root, (xs.clone(), ys.clone()), &rows, "heatmap")?;
        // The subsets below the cells, read bottom to top, each ending at the grid.
        let cw = f64::from(xs.end - xs.start) / nc as f64;
        let style = (FONT, 14)
            .into_font()
            .transform(FontTransform::Rotate270)
            .into_text_style(root)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (c, name) in cols.iter().enumerate() {
            let x = xs.start + (cw * (c as f64 + 0.5)).round() as i32;
            root.draw(&Text::new(name.as_str(), (x, ys.end + 6), &style))
                .map_err(&err)?;
        }
        grid = Some(Grid {
            x0: xs.start,
            x1: xs.end,
            y0: ys.start,
            y1: ys.end,
            width: size.0,
            height: size.1,
        });
        Ok(())
    })?;
    let grid = grid.ok_or_else(|| HtmlError::Chart {
        chart: "heatmap".into(),
        message: "no plotting area".into(),
    })?;
    Ok((svg, grid))
}

/// The largest |x|, or 1 when there is none (an axis must have a width).
fn extent(xs: impl Iterator<Item = f64>) -> f64 {
    let m = xs
        .filter(|x| x.is_finite())
        .fold(0.0f64, |m, x| m.max(x.abs()));
    if m > 0.0 {
        m
    } else {
        1.0
    }
}

/// Bins of a histogram symmetric around 0 (so no bin straddles it): `(low, high, count)`.
pub fn bins(xs: &[f64], half: usize) -> Vec<(f64, f64, usize)> {
    let m = extent(xs.iter().copied());
    let w = m / half as f64;
    let mut counts = vec![0usize; 2 * half];
    for x in xs.iter().filter(|x| x.is_finite()) {
        let i = ((x + m) / w).floor() as isize;
        counts[i.clamp(0, 2 * half as isize - 1) as usize] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (-m + i as f64 * w, -m + (i + 1) as f64 * w, c))
        .collect()
}

/// The histogram of a model's margins (`axis` says which difference): bins below 0 (an
/// incorrect answer scored higher) red, above blue.
pub fn histogram(title: &str, axis: &str, margins: &[f64]) -> Result<String, HtmlError> {
    let b = bins(margins, 20);
    let m = b.last().map_or(1.0, |x| x.1);
    let top = b.iter().map(|x| x.2).max().unwrap_or(1).max(1) as f64 * 1.08;
    draw(title, (620, 260), |root| {
        let err = chart_err(title);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 15))
            .margin(8)
            .margin_right(16)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(-m..m, 0f64..top)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(EMPTY)
            .x_labels(7)
            .y_labels(5)
            .x_label_formatter(&|x| tick(*x, 2))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc(axis)
            .y_desc("rows")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(b.iter().map(|&(lo, hi, c)| {
                let color = if hi <= 0.0 { WRONG } else { BAR };
                let mut r = Rectangle::new([(lo, 0.0), (hi, c as f64)], color.filled());
                r.set_margin(0, 0, 1, 1);
                r
            }))
            .map_err(&err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (0.0, top)],
                BLACK.stroke_width(1),
            )))
            .map_err(&err)?;
        Ok(())
    })
}

/// Margin (y) against length difference (x, characters) of one subset's rows: points top
/// right and bottom left are rows where the model preferred the longer answer.
pub fn length_bias(title: &str, points: &[(f64, f64)]) -> Result<String, HtmlError> {
    let mx = extent(points.iter().map(|p| p.0)) * 1.05;
    let my = extent(points.iter().map(|p| p.1)) * 1.05;
    draw(title, (280, 210), |root| {
        let err = chart_err(title);
        let mut chart = ChartBuilder::on(root)
            .caption(short(title, 34), (FONT, 13))
            .margin(5)
            .margin_right(12)
            .x_label_area_size(20)
            .y_label_area_size(40)
            .build_cartesian_2d(-mx..mx, -my..my)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(3)
            .y_labels(3)
            .label_style((FONT, 11))
            .x_label_formatter(&|x| tick(*x, 0))
            .y_label_formatter(&|y| tick(*y, 2))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series([
                PathElement::new(vec![(-mx, 0.0), (mx, 0.0)], GRAY.stroke_width(1)),
                PathElement::new(vec![(0.0, -my), (0.0, my)], GRAY.stroke_width(1)),
            ])
            .map_err(&err)?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 2, BAR.mix(0.6).filled())),
            )
            .map_err(&err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_symmetric_and_keep_every_value() {
        let b = bins(&[-2.0, -0.5, 0.0, 0.5, 2.0, f64::NAN], 2);
        let edges: Vec<(f64, f64)> = b.iter().map(|x| (x.0, x.1)).collect();
        assert_eq!(edges, [(-2.0, -1.0), (-1.0, 0.0), (0.0, 1.0), (1.0, 2.0)]);
        let counts: Vec<usize> = b.iter().map(|x| x.2).collect();
        assert_eq!(
            counts,
            [1, 1, 2, 1],
            "0 counts right of 0; 2.0 in the last bin"
        );
    }

    #[test]
    fn ticks_have_no_negative_zero() {
        assert_eq!(tick(-0.0001, 2), "0.00");
        assert_eq!(tick(-0.5, 1), "-0.5");
        assert_eq!(tick(3.0, 0), "3");
    }

    #[test]
    fn short_keeps_the_end() {
        assert_eq!(short("org/model", 20), "org/model");
        assert_eq!(short("abcdefghij", 5), "…ghij");
    }

    #[test]
    fn charts_are_inline_svg_without_urls() {
        let b = bars(
            "Score",
            &[Bar {
                label: "m <1>".into(),
                value: 0.5,
                ci: Some((0.4, 0.6)),
            }],
        )
        .unwrap();
        assert!(b.starts_with("<svg "), "{b}");
        assert!(!b.contains("http"), "{b}");
        assert!(b.contains("m &lt;1&gt;  50.0"), "labels are escaped: {b}");
        let (h, g) = heatmap(
            &["a".into(), "b".into()],
            &["s1".into()],
            &[vec![Some(0.25)], vec![None]],
        )
        .unwrap();
        assert!(h.contains(">25.0<") || h.contains("\n25.0\n"), "{h}");
        assert!(g.x1 > g.x0 && g.y1 > g.y0);
    }
}
