//! Inputs shared by the benchmarks: a real historic dump and a generated standard stream.

use std::path::PathBuf;

use linkymon::tic::{Mode, encode_frame};

/// A real single-phase historic capture; it lives outside the crate.
const HISTORIC_DUMP: &str = "../shared/tic/corpus/hist-1p-hc-pboettch-dump.tic";

/// About the size of the historic dump, so both inputs weigh the same.
pub const STANDARD_BYTES: usize = 2_400_000;

/// The historic dump's bytes; None, with a message, when it is not there.
pub fn historic_dump() -> Option<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(HISTORIC_DUMP);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            println!(
                "skipping the historic benchmarks: {} unreadable ({e})",
                path.display()
            );
            None
        }
    }
}

/// `H` (winter) horodate `seconds` after 2024-01-15 00:00:00; the stream lasts about an hour.
fn horodate(seconds: u64) -> String {
    let day = 15 + seconds / 86_400;
    let s = seconds % 86_400;
    format!(
        "H2401{day:02}{:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Standard-mode frames of a single-phase meter on an off-peak contract, starting at 21:40 so
/// the stream crosses into off-peak hours at 22:00. Power, current, voltage, indexes, maxima,
/// load curve, mean voltage and status vary frame by frame as a real line's do.
pub fn standard_stream(target: usize) -> Vec<u8> {
    const PJOURF: &str = "00008001 06008002 22008001 NONUTILE NONUTILE NONUTILE NONUTILE \
                          NONUTILE NONUTILE NONUTILE NONUTILE";
    // Seeded, so that every run benches the same bytes.
    let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(target + 2048);
    let mut t: u64 = 21 * 3600 + 40 * 60;
    let mut energy_hc: f64 = 12_345_678.0;
    let mut energy_hp: f64 = 23_456_789.0;
    let mut power: u64 = 1_200;
    let (mut smax, mut smax_at) = (0u64, t);
    let mut curve_sum = 0u64;
    let mut curve_n = 0u64;
    let (mut ccasn, mut ccasn_prev) = (850u64, 790u64);
    let mut volt_sum = 0u64;
    let mut volt_n = 0u64;
    let mut umoy = 231u64;
    while out.len() < target {
        // A frame every 1 or 2 s; power wanders between 150 VA and 8 kVA.
        let dt = 1 + rng.u64(..2);
        t += dt;
        power = (power as i64 + rng.u64(..401) as i64 - 200).clamp(150, 8_000) as u64;
        let volts = 226 + rng.u64(..13);
        let amps = power / volts;
        let off_peak = t % 86_400 >= 22 * 3600 || t % 86_400 < 6 * 3600;
        let wh = power as f64 * dt as f64 / 3600.0;
        if off_peak {
            energy_hc += wh;
        } else {
            energy_hp += wh;
        }
        if power > smax {
            (smax, smax_at) = (power, t);
        }
        curve_sum += power;
        curve_n += 1;
        if t % 1800 < dt {
            (ccasn_prev, ccasn) = (ccasn, curve_sum / curve_n);
            (curve_sum, curve_n) = (0, 0);
        }
        volt_sum += volts;
        volt_n += 1;
        if t % 600 < dt {
            umoy = volt_sum / volt_n;
            (volt_sum, volt_n) = (0, 0);
        }
        let (hc, hp) = (energy_hc as u64, energy_hp as u64);
        let ntarf = if off_peak { "01" } else { "02" };
        let ltarf = if off_peak {
            "  HEURE CREUSE  "
        } else {
            "  HEURE PLEINE  "
        };
        let stge = format!("00{}A{}001", if off_peak { 3 } else { 4 }, rng.u64(..2) * 4);

        let date = horodate(t);
        let smax_date = horodate(smax_at);
        let ccasn_date = horodate(t - t % 1800);
        let ccasn_prev_date = horodate((t - t % 1800).saturating_sub(1800));
        let umoy_date = horodate(t - t % 600);
        let values = [
            format!("{:09}", hc + hp),
            format!("{hc:09}"),
            format!("{hp:09}"),
            format!("{hc:09}"),
            format!("{hp:09}"),
            format!("{amps:03}"),
            format!("{volts:03}"),
            format!("{power:05}"),
            format!("{smax:05}"),
            format!("{ccasn:05}"),
            format!("{ccasn_prev:05}"),
            format!("{umoy:03}"),
        ];
        let [
            east,
            easf01,
            easf02,
            easd01,
            easd02,
            irms,
            urms,
            sinsts,
            smaxsn,
            cc,
            cc1,
            um,
        ] = values.each_ref().map(String::as_str);
        let zero = "000000000";
        let groups = [
            ("ADSC", None, "041876097467"),
            ("VTIC", None, "02"),
            ("DATE", Some(date.as_str()), ""),
            ("NGTF", None, "H PLEINE/CREUSE "),
            ("LTARF", None, ltarf),
            ("EAST", None, east),
            ("EASF01", None, easf01),
            ("EASF02", None, easf02),
            ("EASF03", None, zero),
            ("EASF04", None, zero),
            ("EASF05", None, zero),
            ("EASF06", None, zero),
            ("EASF07", None, zero),
            ("EASF08", None, zero),
            ("EASF09", None, zero),
            ("EASF10", None, zero),
            ("EASD01", None, easd01),
            ("EASD02", None, easd02),
            ("EASD03", None, zero),
            ("EASD04", None, zero),
            ("IRMS1", None, irms),
            ("URMS1", None, urms),
            ("PREF", None, "09"),
            ("PCOUP", None, "09"),
            ("SINSTS", None, sinsts),
            ("SMAXSN", Some(smax_date.as_str()), smaxsn),
            ("SMAXSN-1", Some("H240114191822"), "06212"),
            ("CCASN", Some(ccasn_date.as_str()), cc),
            ("CCASN-1", Some(ccasn_prev_date.as_str()), cc1),
            ("UMOY1", Some(umoy_date.as_str()), um),
            ("STGE", None, stge.as_str()),
            ("MSG1", None, "PAS DE          MESSAGE         "),
            ("PRM", None, "30001234567890"),
            ("RELAIS", None, "000"),
            ("NTARF", None, ntarf),
            ("NJOURF", None, "00"),
            ("NJOURF+1", None, "00"),
            ("PJOURF+1", None, PJOURF),
        ];
        out.extend_from_slice(&encode_frame(Mode::Standard, groups));
    }
    out
}
