//! Charts: the latency-by-percentile curve of a run beside the raw-disk baseline, and the
//! scaling matrix. plotters draws SVG; a `.png` path gets that SVG rasterized by resvg,
//! its text set in a font of the system's (none found: a clear error, not a chart
//! without labels).

use std::path::Path;

use plotters::prelude::*;

use crate::error::{PerfError, PerfResult};

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 560);
/// Nines shown at least on the percentile axis (99.9%).
const NINES_MIN: f64 = 3.0;

/// One named curve: `(quantile, value µs)` points.
#[derive(Debug, Clone)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, u64)>,
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> PerfError {
    PerfError::io("drawing", path, std::io::Error::other(e.to_string()))
}

/// What a chart file is written as, from its name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    Svg,
    Png,
}

impl ChartFormat {
    /// `.svg` or `.png` (any case); anything else is refused with the reason, so a typo
    /// is caught before a run rather than after it.
    pub fn of(path: &Path) -> Result<ChartFormat, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(ChartFormat::Svg),
            Some("png") => Ok(ChartFormat::Png),
            _ => Err(format!(
                "{}: a chart is written as SVG or PNG, chosen by the name's extension \
                 (.svg or .png)",
                path.display()
            )),
        }
    }
}

/// Writes the SVG text plotters drew to `path`, as SVG or rasterized to PNG.
fn write_chart(path: &Path, svg: &str) -> PerfResult<()> {
    let bytes = match ChartFormat::of(path).map_err(|e| draw_err(path, e))? {
        ChartFormat::Svg => svg.as_bytes().to_vec(),
        ChartFormat::Png => svg_to_png(svg).map_err(|e| draw_err(path, e))?,
    };
    std::fs::write(path, bytes).map_err(|e| PerfError::io("writing", path, e))
}

/// The family generic `sans-serif` text is set in: DejaVu Sans where installed (Debian's
/// default), else the first family the font database lists.
fn sans_serif_family(db: &resvg::usvg::fontdb::Database) -> Option<String> {
    let families: Vec<&str> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.as_str()))
        .collect();
    families
        .iter()
        .find(|f| **f == "DejaVu Sans")
        .or(families.first())
        .map(|f| f.to_string())
}

/// Rasterizes an SVG chart at its own size (1 px per SVG unit) and encodes it as PNG.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    let mut opt = resvg::usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    let family = sans_serif_family(db).ok_or(
        "PNG charts need a TrueType or OpenType font in the system's font directories \
         (Debian: the fonts-dejavu-core package) and none was found; ask for .svg instead",
    )?;
    db.set_sans_serif_family(family);
    let tree = resvg::usvg::Tree::from_str(svg, &opt)
        .map_err(|e| format!("the chart's SVG does not parse: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("no {}x{} pixel buffer", size.width(), size.height()))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| format!("PNG encoding: {e}"))
}

/// The boxed legend of a chart's labelled series.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    path: &Path,
) -> PerfResult<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_err(path, e))
}

/// Quantile → "nines" (`-log10(1 - q)`): 0.9 → 1, 0.99 → 2, … (q = 1 has no position).
fn nines(q: f64) -> Option<f64> {
    (q < 1.0).then(|| -(1.0 - q).log10())
}

fn percent_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as i64 - 2).clamp(0, 6) as usize;
    format!("{p:.decimals$}%")
}

/// Latency (log scale) against percentile (nines) for each curve.
pub fn percentile_chart(path: &Path, title: &str, curves: &[Curve]) -> PerfResult<()> {
    let pts: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| {
            c.points
                .iter()
                .filter_map(|(q, v)| nines(*q).map(|x| (x, (*v).max(1) as f64)))
                .collect()
        })
        .collect();
    let all = pts.iter().flatten();
    let x_max = all.clone().map(|p| p.0).fold(NINES_MIN, f64::max).ceil();
    let y_max = all.clone().map(|p| p.1).fold(10.0, f64::max) * 1.5;
    let y_min = all
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .clamp(1.0, y_max)
        / 1.5;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .margin_right(48)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
            .map_err(|e| draw_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (µs)")
            .x_labels(x_max as usize + 1)
            .x_label_formatter(&|x| percent_label(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| draw_err(path, e))?;
        for (i, (c, p)) in curves.iter().zip(pts).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(p, color.stroke_width(2)))
                .map_err(|e| draw_err(path, e))?
                .label(c.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft, path)?;
        root.present().map_err(|e| draw_err(path, e))?;
    }
    write_chart(path, &svg)
}

/// One line of the matrix chart: a concurrency, and per group count its figure.
#[derive(Debug, Clone)]
pub struct MatrixLine {
    pub name: String,
    /// `(groups, appends/s, p99 µs)`.
    pub points: Vec<(usize, f64, u64)>,
}

/// Two panels: throughput and p99 against the group count, one line per concurrency.
pub fn matrix_chart(path: &Path, title: &str, lines: &[MatrixLine]) -> PerfResult<()> {
    let groups_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let ops_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.2;
    let p99_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.2))
        .max()
        .unwrap_or(1)
        .max(10) as f64
        * 1.5;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 * 3 / 2, SIZE.1)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| draw_err(path, e))?;
        let panels = root.split_evenly((1, 2));
        let x_range = || (1f64..groups_max * 1.5).log_scale();
        let mut left = ChartBuilder::on(&panels[0])
            .caption("throughput", ("sans-serif", 16))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range(), 0f64..ops_max)
            .map_err(|e| draw_err(path, e))?;
        left.configure_mesh()
            .x_desc("groups")
            .y_desc("appends/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| draw_err(path, e))?;
        let mut right = ChartBuilder::on(&panels[1])
            .caption("p99 latency", ("sans-serif", 16))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range(), (1f64..p99_max).log_scale())
            .map_err(|e| draw_err(path, e))?;
        right
            .configure_mesh()
            .x_desc("groups")
            .y_desc("p99 (µs)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| draw_err(path, e))?;
        for (i, l) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let legend = move |(x, y): (i32, i32)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            };
            left.draw_series(LineSeries::new(
                l.points.iter().map(|p| (p.0 as f64, p.1)),
                color.stroke_width(2),
            ))
            .map_err(|e| draw_err(path, e))?
            .label(l.name.clone())
            .legend(legend);
            right
                .draw_series(LineSeries::new(
                    l.points.iter().map(|p| (p.0 as f64, p.2.max(1) as f64)),
                    color.stroke_width(2),
                ))
                .map_err(|e| draw_err(path, e))?
                .label(l.name.clone())
                .legend(legend);
        }
        legend(&mut left, SeriesLabelPosition::UpperRight, path)?;
        legend(&mut right, SeriesLabelPosition::UpperLeft, path)?;
        root.present().map_err(|e| draw_err(path, e))?;
    }
    write_chart(path, &svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(1.0), "90%");
        assert_eq!(percent_label(2.0), "99%");
        assert_eq!(percent_label(3.0), "99.9%");
        assert_eq!(nines(1.0), None);
        assert!((nines(0.99).expect("finite") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn the_chart_format_follows_the_extension_and_others_are_refused() {
        assert_eq!(
            ChartFormat::of(Path::new("a/run.svg")),
            Ok(ChartFormat::Svg)
        );
        assert_eq!(ChartFormat::of(Path::new("run.SVG")), Ok(ChartFormat::Svg));
        assert_eq!(ChartFormat::of(Path::new("run.png")), Ok(ChartFormat::Png));
        for bad in ["run.jpg", "run", "run.svg.txt", ".png/run"] {
            let e = ChartFormat::of(Path::new(bad)).expect_err(bad);
            assert!(e.contains(".svg or .png") && e.contains(bad), "{e}");
        }
    }

    fn sample_curves() -> Vec<Curve> {
        let curve = |name: &str, us: [u64; 4]| Curve {
            name: name.into(),
            points: [0.5, 0.9, 0.99, 0.999].into_iter().zip(us).collect(),
        };
        vec![
            curve("append", [800, 1000, 1900, 5500]),
            curve("raw", [350, 460, 650, 1900]),
        ]
    }

    /// Both formats from one drawing: the SVG names the curves, the PNG is a PNG of the
    /// chart's size and not a blank image. Without a system font the PNG is
    /// refused with the reason instead (and nothing is written).
    #[test]
    fn a_chart_is_written_as_svg_or_as_png() {
        let dir = std::env::temp_dir().join(format!("dledger-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let svg_path = dir.join("c.svg");
        percentile_chart(&svg_path, "t", &sample_curves()).expect("svg chart");
        let svg = std::fs::read_to_string(&svg_path).expect("read svg");
        assert!(svg.starts_with("<svg") && svg.contains("append") && svg.contains("raw"));

        let png_path = dir.join("c.png");
        let mut probe = resvg::usvg::fontdb::Database::new();
        probe.load_system_fonts();
        match percentile_chart(&png_path, "t", &sample_curves()) {
            Ok(()) => {
                let png = std::fs::read(&png_path).expect("read png");
                assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
                // IHDR: width and height, big-endian, at bytes 16..24.
                let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
                let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
                assert_eq!((w, h), SIZE);
                let pixels = svg_to_png(&svg).expect("rasterizes");
                assert!(pixels.len() > 2_000, "a chart, not a blank image");
            }
            Err(e) => {
                assert!(sans_serif_family(&probe).is_none(), "fonts exist, yet: {e}");
                assert!(e.to_string().contains("font"), "{e}");
                assert!(!png_path.exists());
            }
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
