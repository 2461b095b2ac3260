//! An order's totals, in one pure function run on every change of its lines: `subtotal −
//! discount + shipping + tax = total`, all integers in minor units.
//!
//! - each line's gross is `quantity × unit_price`; the subtotal is their sum;
//! - the order's discount is split across the lines in proportion to their gross, by largest
//!   remainder (the shares sum to the discount exactly; ties go to the earlier line);
//! - each line's tax is its rate in basis points of its gross less its share of the discount,
//!   rounded half to even once per line; the order's tax is their sum;
//! - shipping is added as given (untaxed: a taxed shipping charge is sent tax included).

use shared::money::MAX_AMOUNT;
pub use shared::money::MAX_TAX_RATE_BPS;

/// One line as the order has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineIn {
    pub quantity: i64,
    pub unit_price: i64,
    pub tax_rate_bps: i64,
}

/// One line's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTotals {
    /// `quantity × unit_price`.
    pub gross: i64,
    /// Its share of the order's discount.
    pub discount: i64,
    pub tax: i64,
    /// `gross − discount + tax`.
    pub total: i64,
}

/// The order's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub lines: Vec<LineTotals>,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
}

/// Why the figures cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalsError {
    /// The line at this index exceeds the largest amount (or has a negative figure).
    Line(usize),
    /// A tax rate outside 0..=10 000 basis points, at this line.
    TaxRate(usize),
    /// A negative discount, or one larger than the subtotal.
    Discount,
    /// A negative shipping amount, or one over the largest amount.
    Shipping,
    /// The total exceeds the largest amount.
    Total,
}

/// The totals of `lines` with an order-level `discount` and `shipping`.
pub fn compute(lines: &[LineIn], discount: i64, shipping: i64) -> Result<Totals, TotalsError> {
    let mut gross = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if !(0..=MAX_TAX_RATE_BPS).contains(&line.tax_rate_bps) {
            return Err(TotalsError::TaxRate(i));
        }
        match shared::money::line_total(line.quantity, line.unit_price) {
            Some(g) if line.quantity >= 0 => gross.push(g),
            _ => return Err(TotalsError::Line(i)),
        }
    }
    let subtotal = shared::money::sum(gross.iter().copied()).ok_or(TotalsError::Total)?;
    if !(0..=subtotal).contains(&discount) {
        return Err(TotalsError::Discount);
    }
    if !(0..=MAX_AMOUNT).contains(&shipping) {
        return Err(TotalsError::Shipping);
    }
    let shares = split_by_largest_remainder(discount, &gross);
    let lines: Vec<LineTotals> = lines
        .iter()
        .zip(gross.iter().zip(shares))
        .map(|(line, (&gross, discount))| {
            let tax = rate_of(gross - discount, line.tax_rate_bps);
            LineTotals {
                gross,
                discount,
                tax,
                total: gross - discount + tax,
            }
        })
        .collect();
    // Each tax is at most its net, so every sum below stays within i128 and is checked once.
    let tax: i128 = lines.iter().map(|l| i128::from(l.tax)).sum();
    let total = i128::from(subtotal) - i128::from(discount) + i128::from(shipping) + tax;
    if total > i128::from(MAX_AMOUNT) {
        return Err(TotalsError::Total);
    }
    Ok(Totals {
        lines,
        subtotal,
        discount,
        shipping,
        tax: tax as i64,
        total: total as i64,
    })
}

/// `amount` split in proportion to `weights` (non-negative, summing to at least `amount` or to
/// 0): floors first, then one more unit to each of the largest remainders until the shares sum
/// to `amount`; ties go to the earlier weight.
pub fn split_by_largest_remainder(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|&w| i128::from(w)).sum();
    if amount == 0 || total == 0 {
        return vec![0; weights.len()];
    }
    let amount = i128::from(amount);
    let mut shares: Vec<i128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let product = amount * i128::from(w);
        shares.push(product / total);
        remainders.push((product % total, i));
    }
    let left = amount - shares.iter().sum::<i128>();
    // Largest remainder first; among equals, the earlier line.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(left as usize) {
        shares[i] += 1;
    }
    shares.into_iter().map(|s| s as i64).collect()
}

/// `rate_bps` basis points of `amount`, rounded half to even.
pub fn rate_of(amount: i64, rate_bps: i64) -> i64 {
    let product = i128::from(amount) * i128::from(rate_bps);
    let (quotient, remainder) = (product / 10_000, product % 10_000);
    let rounded = match (remainder * 2).cmp(&10_000) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient % 2),
    };
    rounded as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(quantity: i64, unit_price: i64, tax_rate_bps: i64) -> LineIn {
        LineIn {
            quantity,
            unit_price,
            tax_rate_bps,
        }
    }

    #[test]
    fn a_worked_example() {
        // 3 × 10.00 and 1 × 5.00, 10.00 off, 5.00 shipping, 20 % and 5.5 % tax.
        let totals = compute(&[line(3, 1000, 2000), line(1, 500, 550)], 1000, 500).unwrap();
        assert_eq!(totals.subtotal, 3500);
        // 1000 × 3000/3500 = 857.14…, 1000 × 500/3500 = 142.85…: the 1 left goes to the
        // second line, whose remainder (.857) is the larger.
        assert_eq!(totals.lines[0].discount, 857);
        assert_eq!(totals.lines[1].discount, 143);
        // 20 % of 2143 = 428.6 → 429; 5.5 % of 357 = 19.635 → 20.
        assert_eq!(totals.lines[0].tax, 429);
        assert_eq!(totals.lines[1].tax, 20);
        assert_eq!(totals.tax, 449);
        assert_eq!(totals.total, 3500 - 1000 + 500 + 449);
        assert_eq!(totals.lines[0].total, 3000 - 857 + 429);
    }

    #[test]
    fn halves_round_to_even() {
        assert_eq!(rate_of(25, 2000), 5);
        assert_eq!(rate_of(125, 400), 5); // 5.0
        assert_eq!(rate_of(1, 5000), 0); // 0.5 → 0
        assert_eq!(rate_of(3, 5000), 2); // 1.5 → 2
        assert_eq!(rate_of(5, 5000), 2); // 2.5 → 2
        assert_eq!(rate_of(7, 5000), 4); // 3.5 → 4
        assert_eq!(rate_of(1001, 5), 1); // 0.5005 → 1
    }

    #[test]
    fn ties_in_the_split_go_to_the_earlier_line() {
        assert_eq!(split_by_largest_remainder(1, &[100, 100, 100]), [1, 0, 0]);
        assert_eq!(split_by_largest_remainder(2, &[100, 100, 100]), [1, 1, 0]);
        assert_eq!(split_by_largest_remainder(100, &[1, 1, 1]), [34, 33, 33]);
        assert_eq!(split_by_largest_remainder(7, &[0, 10]), [0, 7]);
    }

    #[test]
    fn bad_figures_name_what_is_wrong() {
        assert_eq!(
            compute(&[line(1, 100, 0)], 101, 0),
            Err(TotalsError::Discount)
        );
        assert_eq!(
            compute(&[line(1, 100, 0)], -1, 0),
            Err(TotalsError::Discount)
        );
        assert_eq!(
            compute(&[line(1, 100, 0)], 0, -1),
            Err(TotalsError::Shipping)
        );
        assert_eq!(
            compute(&[line(1, 1, 0), line(1, 1, 10_001)], 0, 0),
            Err(TotalsError::TaxRate(1))
        );
        assert_eq!(
            compute(&[line(1, 1, 0), line(1_000_000, MAX_AMOUNT, 0)], 0, 0),
            Err(TotalsError::Line(1))
        );
        assert_eq!(
            compute(&[line(1, MAX_AMOUNT, 0)], 0, 1),
            Err(TotalsError::Total)
        );
        assert_eq!(
            compute(&[line(1, MAX_AMOUNT, 1)], 0, 0),
            Err(TotalsError::Total)
        );
    }

    fn lines() -> impl Strategy<Value = Vec<LineIn>> {
        prop::collection::vec(
            // At most 19 × 999 × 999,999 = 1.9e10 before tax, so the total (tax at most doubles
            // it) stays under MAX_AMOUNT: the overflow is checked on its own.
            (1i64..1_000, 0i64..1_000_000, 0i64..=MAX_TAX_RATE_BPS).prop_map(
                |(quantity, unit_price, tax_rate_bps)| line(quantity, unit_price, tax_rate_bps),
            ),
            1..20,
        )
    }

    proptest! {
        #[test]
        fn the_figures_always_add_up(
            lines in lines(),
            discount_part in 0u32..=1000,
            shipping in 0i64..100_000,
        ) {
            let subtotal: i64 = lines.iter().map(|l| l.quantity * l.unit_price).sum();
            let discount = (i128::from(subtotal) * i128::from(discount_part) / 1000) as i64;
            let totals = compute(&lines, discount, shipping).unwrap();
            prop_assert_eq!(totals.subtotal, subtotal);
            prop_assert_eq!(totals.lines.iter().map(|l| l.discount).sum::<i64>(), discount);
            prop_assert_eq!(totals.lines.iter().map(|l| l.tax).sum::<i64>(), totals.tax);
            prop_assert_eq!(
                totals.total,
                totals.subtotal - totals.discount + totals.shipping + totals.tax
            );
            prop_assert_eq!(
                totals.lines.iter().map(|l| l.total).sum::<i64>() + shipping,
                totals.total
            );
            for (l, t) in lines.iter().zip(&totals.lines) {
                // No line is discounted below zero, and each share is within one unit of its
                // exact proportion.
                prop_assert!(0 <= t.discount && t.discount <= t.gross);
                if subtotal > 0 {
                    let exact = i128::from(discount) * i128::from(t.gross);
                    let share = i128::from(t.discount) * i128::from(subtotal);
                    prop_assert!((share - exact).abs() < i128::from(subtotal));
                }
                // The tax is the rate of the net, off by at most half a unit.
                let exact = i128::from(t.gross - t.discount) * i128::from(l.tax_rate_bps);
                prop_assert!((i128::from(t.tax) * 10_000 - exact).abs() <= 5_000);
            }
        }

        #[test]
        fn the_split_is_exact_and_fair(
            amount in 0i64..1_000_000,
            weights in prop::collection::vec(0i64..1_000_000, 1..30),
        ) {
            let total: i64 = weights.iter().sum();
            prop_assume!(total >= amount);
            let shares = split_by_largest_remainder(amount, &weights);
            prop_assert_eq!(shares.iter().sum::<i64>(), if total == 0 { 0 } else { amount });
            for (s, w) in shares.iter().zip(&weights) {
                prop_assert!(*s <= *w);
            }
        }
    }
}
