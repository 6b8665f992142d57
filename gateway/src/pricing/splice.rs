//! BSS price answers re-priced in place: the provider's text is kept byte
//! for byte and only the values the partner prices change are replaced.
//!
//! This is the fast path of [`super::rewrite::rewrite_bss`], for the
//! answers the provider actually sends. Reading a whole answer into a
//! `serde_json::Value` tree, rewriting the tree and writing it out again
//! costs more than everything else a cached price query does (a map and a
//! string per key and per number); here the answer is scanned once into
//! borrowed spans ([`RawValue`]s) of the few values that matter, and the
//! new answer is the old text with those spans replaced.
//!
//! The contract: for every answer [`BssAnswer::read`] accepts, the order it
//! builds and the text it writes are exactly what the `Value` path builds
//! and writes, up to insignificant whitespace and escapes in the provider's
//! untouched text (`splice/tests.rs` checks this on many shapes). Anything
//! unusual (a duplicate key, a list where an object belongs, a field of an
//! unexpected type) makes `read` return `None`, and the caller takes the
//! `Value` path, which handles and reports every shape.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::order::{self, BssDetail, BssRequest};
use super::rewrite::{bss_units, discount_rules, rule_id, unit_price};
use super::{Order, Quote};

/// Captures a field's raw text whatever it is (`null` included: an
/// `Option<&RawValue>` would read `null` as absent, where the `Value` path
/// sees a key that is there).
fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(rename = "Success", default, borrow, deserialize_with = "raw")]
    success: Option<&'a RawValue>,
    #[serde(rename = "Data", default, borrow, deserialize_with = "raw")]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "Currency", default, borrow)]
    currency: Option<Cow<'a, str>>,
    #[serde(rename = "OriginalPrice", default, borrow, deserialize_with = "raw")]
    original_price: Option<&'a RawValue>,
    #[serde(rename = "DiscountPrice", default, borrow, deserialize_with = "raw")]
    discount_price: Option<&'a RawValue>,
    #[serde(rename = "TradePrice", default, borrow, deserialize_with = "raw")]
    trade_price: Option<&'a RawValue>,
    #[serde(rename = "ModuleDetails", default, borrow, deserialize_with = "raw")]
    module_details: Option<&'a RawValue>,
    #[serde(rename = "PromotionDetails", default, borrow, deserialize_with = "raw")]
    promotion_details: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ModuleDetails<'a> {
    #[serde(rename = "ModuleDetail", default, borrow, deserialize_with = "raw")]
    module_detail: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(rename = "ModuleCode", default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "OriginalCost", default, borrow, deserialize_with = "raw")]
    original_cost: Option<&'a RawValue>,
    #[serde(rename = "InvoiceDiscount", default, borrow, deserialize_with = "raw")]
    invoice_discount: Option<&'a RawValue>,
    #[serde(
        rename = "CostAfterDiscount",
        default,
        borrow,
        deserialize_with = "raw"
    )]
    cost_after_discount: Option<&'a RawValue>,
    #[serde(rename = "UnitPrice", default, borrow, deserialize_with = "raw")]
    unit_price: Option<&'a RawValue>,
}

/// One `ModuleDetail`, read in place.
struct DetailSpans<'a> {
    object: &'a RawValue,
    fields: Detail<'a>,
}

/// A successful or failed BSS `GetSubscriptionPrice` / `GetPayAsYouGoPrice`
/// answer, read in place.
pub struct BssAnswer<'a> {
    text: &'a str,
    failed: bool,
    data: Option<&'a RawValue>,
    fields: Option<Data<'a>>,
    /// `Data.ModuleDetails.ModuleDetail`, the list itself.
    list: Option<&'a RawValue>,
    details: Vec<DetailSpans<'a>>,
}

impl std::fmt::Debug for BssAnswer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BssAnswer")
            .field("bytes", &self.text.len())
            .field("failed", &self.failed)
            .field("details", &self.details.len())
            .finish_non_exhaustive()
    }
}

fn is_object(v: &RawValue) -> bool {
    v.get().starts_with('{')
}

fn is_null(v: Option<&RawValue>) -> bool {
    v.is_none_or(|v| v.get() == "null")
}

/// A raw JSON number or numeric string as a non-negative exact decimal
/// (what `order::decimal` reads from a parsed value).
fn raw_decimal(v: Option<&RawValue>) -> Option<Decimal> {
    let text = v?.get();
    if text.starts_with('"') {
        let s: Cow<'_, str> = serde_json::from_str(text).ok()?;
        order::decimal_text(&s)
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        order::decimal_text(text)
    } else {
        None
    }
}

impl<'a> BssAnswer<'a> {
    /// Reads `body` in place, or `None` when it is not an answer this path
    /// takes (not UTF-8, not JSON, an unusual shape): the caller then parses
    /// it whole.
    pub fn read(body: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        let top: Top<'a> = serde_json::from_str(text).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let failed = top.success.is_some_and(|s| s.get() == "false");
        let mut answer = Self {
            text,
            failed,
            data: top.data,
            fields: None,
            list: None,
            details: Vec::new(),
        };
        if failed {
            return Some(answer);
        }
        // Where the `Value` path would find no object to read, it reports
        // the answer as broken: leave that to it.
        let data = top.data.filter(|d| is_object(d))?;
        let fields: Data<'a> = serde_json::from_str(data.get()).ok()?;
        if let Some(md) = fields.module_details.filter(|m| !is_null(Some(m))) {
            if !is_object(md) {
                return None;
            }
            let inner: ModuleDetails<'a> = serde_json::from_str(md.get()).ok()?;
            if let Some(list) = inner.module_detail.filter(|l| !is_null(Some(l))) {
                let items: Vec<&'a RawValue> = serde_json::from_str(list.get()).ok()?;
                for object in items {
                    if !is_object(object) {
                        return None;
                    }
                    let fields: Detail<'a> = serde_json::from_str(object.get()).ok()?;
                    answer.details.push(DetailSpans { object, fields });
                }
                answer.list = Some(list);
            }
        }
        answer.fields = Some(fields);
        Some(answer)
    }

    /// The provider refused (`"Success": false`): the answer passes through
    /// untouched.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The order this answer prices (the errors `order::order_from_bss`
    /// gives for the same answer).
    pub fn order(&self, req: &BssRequest<'_>) -> Result<Order, String> {
        let Some(fields) = &self.fields else {
            return Err("no Data in the price answer".into());
        };
        let details: Option<Vec<BssDetail<'_>>> = self.list.map(|_| {
            self.details
                .iter()
                .map(|d| BssDetail {
                    code: d.fields.code.as_deref().map(Cow::Borrowed),
                    original_cost: raw_decimal(d.fields.original_cost),
                    cost_after_discount: raw_decimal(d.fields.cost_after_discount),
                })
                .collect()
        });
        order::order_from_bss_details(req, fields.currency.as_deref(), details.as_deref())
    }

    /// The answer re-priced: what `rewrite::rewrite_bss` makes of it,
    /// written over the provider's own text. `order` was built by
    /// [`Self::order`] from this answer.
    pub fn rewrite(&self, order: &Order, quote: &Quote, payg: bool) -> Vec<u8> {
        let mut edits = Edits::new(self.text);
        let (Some(fields), Some(data), Some(list)) = (&self.fields, self.data, self.list) else {
            return self.text.as_bytes().to_vec();
        };
        let mut months_per_unit = Decimal::ONE;
        for ((d, line), item) in self.details.iter().zip(&quote.lines).zip(&order.lines) {
            let u = if payg {
                Decimal::ONE
            } else {
                bss_units(item.quantity, item.period_count, item.period_unit)
            };
            months_per_unit = u / Decimal::from(item.quantity.max(1));
            let mut object = Object::new(d.object);
            let f = &d.fields;
            edits.set(
                &mut object,
                "OriginalCost",
                f.original_cost,
                number(line.list),
            );
            edits.set(
                &mut object,
                "InvoiceDiscount",
                f.invoice_discount,
                number(line.discount),
            );
            edits.set(
                &mut object,
                "CostAfterDiscount",
                f.cost_after_discount,
                number(line.price),
            );
            if f.unit_price.is_some() {
                let official_unit = raw_decimal(f.unit_price);
                let unit = unit_price(official_unit, item.official, line.list, u);
                edits.set(&mut object, "UnitPrice", f.unit_price, number(unit));
            }
        }
        let mut array = Object::new(list);
        for b in &quote.bundles {
            let u = Decimal::from(b.quantity.max(1)) * months_per_unit;
            let mut text = String::with_capacity(160);
            text.push_str("{\"ModuleCode\":");
            push_str(&mut text, &b.id);
            for (key, value) in [
                ("OriginalCost", b.list),
                ("InvoiceDiscount", b.discount),
                ("CostAfterDiscount", b.price),
                ("UnitPrice", unit_price(None, Decimal::ZERO, b.list, u)),
            ] {
                text.push_str(",\"");
                text.push_str(key);
                text.push_str("\":");
                text.push_str(&number(value));
            }
            text.push('}');
            edits.push_element(&mut array, text);
        }
        let mut data_object = Object::new(data);
        if !payg {
            edits.set(
                &mut data_object,
                "OriginalPrice",
                fields.original_price,
                number(quote.list_total),
            );
            edits.set(
                &mut data_object,
                "DiscountPrice",
                fields.discount_price,
                number(quote.discount_total),
            );
            edits.set(
                &mut data_object,
                "TradePrice",
                fields.trade_price,
                number(quote.total),
            );
        }
        let mut promos = String::from("{\"PromotionDetail\":[");
        for (i, r) in discount_rules(quote).into_iter().enumerate() {
            if i > 0 {
                promos.push(',');
            }
            promos.push_str("{\"PromotionId\":");
            promos.push_str(&rule_id(r).to_string());
            promos.push_str(",\"PromotionName\":");
            push_str(&mut promos, r);
            promos.push_str(",\"PromotionDesc\":");
            push_str(&mut promos, &format!("Partner price rule {r}"));
            promos.push('}');
        }
        promos.push_str("]}");
        edits.set(
            &mut data_object,
            "PromotionDetails",
            fields.promotion_details,
            promos,
        );
        edits.apply()
    }
}

/// An amount as JSON number text, exactly as `rewrite::json_number` writes
/// it.
fn number(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `s` as a JSON string literal.
fn push_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        // Serializing a `str` cannot fail; write an empty string regardless.
        Err(_) => out.push_str("\"\""),
    }
}

/// An object (or array) of the answer being edited: where it closes and
/// whether it has members yet (for the comma before an appended one).
struct Object {
    /// Address of the closing `}` / `]` (in the answer's text).
    close: usize,
    has_members: bool,
}

impl Object {
    fn new(v: &RawValue) -> Self {
        let text = v.get();
        Self {
            close: text.as_ptr() as usize + text.len() - 1,
            has_members: !text[1..text.len() - 1].trim().is_empty(),
        }
    }
}

/// Replacements and insertions over the answer's text, applied in order of
/// position (insertions at the same place in the order they were made).
struct Edits<'a> {
    text: &'a str,
    base: usize,
    edits: Vec<(usize, usize, String)>,
}

impl<'a> Edits<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            base: text.as_ptr() as usize,
            edits: Vec::with_capacity(16),
        }
    }

    /// The offset in the answer of a span borrowed from it.
    fn offset(&self, address: usize) -> usize {
        address - self.base
    }

    /// `key := value` in `object`: the value replaced where the key is,
    /// else the member appended (as `Map::insert` does).
    fn set(&mut self, object: &mut Object, key: &str, at: Option<&RawValue>, value: String) {
        match at {
            Some(old) => {
                let start = self.offset(old.get().as_ptr() as usize);
                self.edits.push((start, start + old.get().len(), value));
            }
            None => {
                let mut text = String::with_capacity(key.len() + value.len() + 4);
                if object.has_members {
                    text.push(',');
                }
                text.push('"');
                text.push_str(key);
                text.push_str("\":");
                text.push_str(&value);
                object.has_members = true;
                let close = self.offset(object.close);
                self.edits.push((close, close, text));
            }
        }
    }

    /// `element` appended to the array `array`.
    fn push_element(&mut self, array: &mut Object, element: String) {
        let text = if array.has_members {
            format!(",{element}")
        } else {
            element
        };
        array.has_members = true;
        let close = self.offset(array.close);
        self.edits.push((close, close, text));
    }

    fn apply(mut self) -> Vec<u8> {
        // Stable: insertions at one place keep the order they were made in.
        self.edits.sort_by_key(|e| e.0);
        let extra: usize = self.edits.iter().map(|e| e.2.len()).sum();
        let mut out = Vec::with_capacity(self.text.len() + extra);
        let mut at = 0;
        for (start, end, text) in &self.edits {
            debug_assert!(*start >= at && end >= start, "edits do not overlap");
            out.extend_from_slice(&self.text.as_bytes()[at..*start]);
            out.extend_from_slice(text.as_bytes());
            at = *end;
        }
        out.extend_from_slice(&self.text.as_bytes()[at..]);
        out
    }
}

#[cfg(test)]
mod tests;
