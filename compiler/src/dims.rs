//! Dimension unification: a union-find over dimension variables where each variable may be
//! an offset of another (`T - 2` after cropping) and each class may be bound to a number.
//!
//! A dimension the user *named* in the model being compiled (`x: [T, 4]`, `model M<N>`) is
//! rigid: it means "any size", so unifying it with another named dimension or with a number
//! is an error ([`DimMismatch::Merged`], [`DimMismatch::Pinned`]). The dimensions of a
//! called model and the anonymous `_` are flexible: they take whatever the call gives.

use seqmodel_grammar::Span;

/// A dimension during inference: a number, or a variable plus an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum D {
    /// Known size.
    Fixed(usize),
    /// `var + off`.
    Var(usize, i64),
}

impl D {
    /// This dimension plus `off` steps (a fixed size never goes below zero).
    pub fn plus(self, off: i64) -> D {
        match self {
            D::Fixed(n) => D::Fixed((n as i64 + off).max(0) as usize),
            D::Var(v, o) => D::Var(v, o + off),
        }
    }
}

/// Why two dimensions could not be unified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimMismatch {
    /// Two sizes that differ.
    Sizes,
    /// Two different named dimensions would become one.
    Merged {
        /// The one named first.
        a: String,
        /// The other.
        b: String,
    },
    /// A named dimension would be fixed to a number.
    Pinned {
        /// Its name.
        name: String,
        /// The number.
        value: i64,
    },
}

impl DimMismatch {
    /// The `help:` for a mismatch caused by a named dimension, if it was one.
    pub fn help(&self) -> Option<String> {
        match self {
            DimMismatch::Sizes => None,
            DimMismatch::Merged { a, b } => {
                let derived =
                    [a, b].into_iter().find(|n| !n.chars().all(|c| c.is_alphanumeric() || c == '_'));
                Some(match derived {
                    Some(d) => format!(
                        "`{d}` is the length a strided window computes, not `{}`; write `_` for it where a type is declared",
                        if d == a { b } else { a }
                    ),
                    None => format!(
                        "`{a}` and `{b}` are different dimensions; if they are always equal, use one name for both"
                    ),
                })
            }
            DimMismatch::Pinned { name, value } => Some(format!(
                "`{name}` is a named dimension (any size), but here it must be {value}; write {value} instead of `{name}`"
            )),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    parent: usize,
    /// value(self) = value(parent) + offset
    offset: i64,
    /// Bound value of a root.
    value: Option<i64>,
    name: String,
    /// Named by the user in the model being compiled: never merged or bound.
    rigid: bool,
}

/// The table of dimension variables.
#[derive(Debug, Clone, Default)]
pub struct DimTable {
    entries: Vec<Entry>,
    /// Lengths derived from another by a rounded division (a strided window), by
    /// `(root, offset, formula)`: the same derivation of the same length is one dimension.
    derived: std::collections::HashMap<(usize, i64, String), D>,
}

impl DimTable {
    /// A new unbound flexible variable named `name` (the name shows in messages).
    pub fn fresh(&mut self, name: &str, span: Option<Span>) -> D {
        self.new_var(name, span, false)
    }

    /// A new rigid variable: a dimension the user named in the model being compiled.
    pub fn fresh_rigid(&mut self, name: &str, span: Option<Span>) -> D {
        self.new_var(name, span, true)
    }

    /// The length `⌊(d + add) / div⌋` of a dimension `d` known only at run time (after a
    /// strided window), as a rigid variable named by its formula (`(T-4)/2`): it unifies
    /// with itself (the same derivation of the same length gives the same variable), never
    /// with another dimension or a number, and no input binds it (the runtime computes it).
    pub fn derived(&mut self, d: D, add: i64, div: usize) -> D {
        let D::Var(r, off) = self.resolve(d) else {
            let D::Fixed(n) = d else { unreachable!() };
            return D::Fixed(((n as i64 + add).max(0) as usize) / div.max(1));
        };
        let inner = self.show(D::Var(r, off + add));
        let bare = inner.chars().all(|c| c.is_alphanumeric() || c == '_');
        let name = match (div, bare) {
            (1, _) => inner,
            (_, true) => format!("{inner}/{div}"),
            _ => format!("({inner})/{div}"),
        };
        let key = (r, off + add, name.clone());
        if let Some(d) = self.derived.get(&key) {
            return *d;
        }
        let v = self.fresh_rigid(&name, None);
        self.derived.insert(key, v);
        v
    }

    /// The length `k · d` of a dimension `d` known only at run time (after an upsampling),
    /// as a rigid variable named by its formula (`2*T`), like [`DimTable::derived`]'s.
    pub fn scaled(&mut self, d: D, k: usize) -> D {
        let D::Var(r, off) = self.resolve(d) else {
            let D::Fixed(n) = d else { unreachable!() };
            return D::Fixed(n * k);
        };
        if k == 1 {
            return D::Var(r, off);
        }
        let inner = self.show(D::Var(r, off));
        let bare = inner.chars().all(|c| c.is_alphanumeric() || c == '_');
        let name = if bare { format!("{k}*{inner}") } else { format!("{k}*({inner})") };
        let key = (r, off, name.clone());
        if let Some(d) = self.derived.get(&key) {
            return *d;
        }
        let v = self.fresh_rigid(&name, None);
        self.derived.insert(key, v);
        v
    }

    fn new_var(&mut self, name: &str, span: Option<Span>, rigid: bool) -> D {
        let id = self.entries.len();
        let _ = span;
        self.entries.push(Entry { parent: id, offset: 0, value: None, name: name.into(), rigid });
        D::Var(id, 0)
    }

    /// The root of `v` and the offset with `value(v) = value(root) + offset`.
    fn find(&mut self, v: usize) -> (usize, i64) {
        let p = self.entries[v].parent;
        if p == v {
            return (v, 0);
        }
        let (root, off) = self.find(p);
        let total = self.entries[v].offset + off;
        self.entries[v].parent = root;
        self.entries[v].offset = total;
        (root, total)
    }

    /// The most resolved form of `d`: a number if its class is bound, else root + offset.
    pub fn resolve(&mut self, d: D) -> D {
        match d {
            D::Fixed(_) => d,
            D::Var(v, o) => {
                let (root, off) = self.find(v);
                match self.entries[root].value {
                    Some(val) if val + off + o >= 0 => D::Fixed((val + off + o) as usize),
                    _ => D::Var(root, off + o),
                }
            }
        }
    }

    /// Makes `a` and `b` equal, or says they cannot be.
    pub fn unify(&mut self, a: D, b: D) -> Result<(), DimMismatch> {
        match (self.resolve(a), self.resolve(b)) {
            (D::Fixed(x), D::Fixed(y)) => {
                if x == y {
                    Ok(())
                } else {
                    Err(DimMismatch::Sizes)
                }
            }
            (D::Var(r, o), D::Fixed(n)) | (D::Fixed(n), D::Var(r, o)) => {
                let val = n as i64 - o;
                if val < 0 {
                    return Err(DimMismatch::Sizes);
                }
                if self.entries[r].rigid {
                    return Err(DimMismatch::Pinned { name: self.entries[r].name.clone(), value: val });
                }
                self.entries[r].value = Some(val);
                Ok(())
            }
            (D::Var(ra, oa), D::Var(rb, ob)) => {
                if ra == rb {
                    return if oa == ob { Ok(()) } else { Err(DimMismatch::Sizes) };
                }
                let (rigid_a, rigid_b) = (self.entries[ra].rigid, self.entries[rb].rigid);
                if rigid_a && rigid_b {
                    let (a, b) = (self.entries[ra].name.clone(), self.entries[rb].name.clone());
                    return Err(DimMismatch::Merged { a, b });
                }
                if rigid_b {
                    // A rigid root stays a root (value(ra) = value(rb) + ob - oa).
                    return self.unify(D::Var(rb, ob), D::Var(ra, oa));
                }
                // value(rb) = value(ra) + oa - ob
                self.entries[rb].parent = ra;
                self.entries[rb].offset = oa - ob;
                if let Some(vb) = self.entries[rb].value.take() {
                    let va = vb - (oa - ob);
                    if rigid_a {
                        return Err(DimMismatch::Pinned { name: self.entries[ra].name.clone(), value: va });
                    }
                    match self.entries[ra].value {
                        Some(x) if x != va => return Err(DimMismatch::Sizes),
                        _ => self.entries[ra].value = Some(va),
                    }
                }
                Ok(())
            }
        }
    }

    /// Renders `d` for messages: `5`, `T`, `T-2`.
    pub fn show(&mut self, d: D) -> String {
        match self.resolve(d) {
            D::Fixed(n) => n.to_string(),
            D::Var(r, o) => {
                let name = self.entries[r].name.clone();
                match o {
                    0 => name,
                    o if o > 0 => format!("{name}+{o}"),
                    o => format!("{name}-{}", -o),
                }
            }
        }
    }

    /// The root variable ids of all unbound classes, in creation order.
    pub fn roots(&mut self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].parent == i && self.entries[i].value.is_none())
            .collect()
    }

    /// The display name of a root.
    pub fn root_name(&self, root: usize) -> &str {
        &self.entries[root].name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_compose_through_unification() {
        let mut t = DimTable::default();
        let a = t.fresh("T", None);
        let b = t.fresh("U", None);
        let D::Var(bv, _) = b else { unreachable!() };
        // U - 2 == T
        t.unify(D::Var(bv, -2), a).unwrap();
        t.unify(a, D::Fixed(5)).unwrap();
        assert_eq!(t.resolve(b), D::Fixed(7));
    }

    /// An upsampled run-time length is named by its formula, the same for the same
    /// derivation, a number for a fixed length, and never another dimension.
    #[test]
    fn scaled_lengths_are_named_and_shared() {
        let mut t = DimTable::default();
        let a = t.fresh_rigid("T", None);
        let twice = t.scaled(a, 2);
        assert_eq!(t.show(twice), "2*T");
        assert_eq!(t.scaled(a, 2), twice);
        assert_eq!(t.scaled(a, 1), a);
        assert!(t.unify(twice, a).is_err());
        let pooled = t.derived(a, 4, 2);
        let thrice = t.scaled(pooled, 3);
        assert_eq!(t.show(thrice), "3*((T+4)/2)");
        assert_eq!(t.scaled(D::Fixed(5), 3), D::Fixed(15));
    }

    #[test]
    fn conflicting_numbers_fail() {
        let mut t = DimTable::default();
        let a = t.fresh("T", None);
        t.unify(a, D::Fixed(3)).unwrap();
        assert_eq!(t.unify(a, D::Fixed(4)), Err(DimMismatch::Sizes));
        let D::Var(av, _) = a else { unreachable!() };
        assert_eq!(t.unify(D::Var(av, 1), D::Fixed(4)), Ok(()));
    }

    #[test]
    fn named_dimensions_are_never_merged_or_pinned() {
        let mut t = DimTable::default();
        let (a, b) = (t.fresh_rigid("T", None), t.fresh_rigid("S", None));
        assert_eq!(t.unify(a, b), Err(DimMismatch::Merged { a: "T".into(), b: "S".into() }));
        assert_eq!(t.unify(a, D::Fixed(6)), Err(DimMismatch::Pinned { name: "T".into(), value: 6 }));
        // A flexible variable (a callee's `T`) takes the named one, then cannot be bound.
        let c = t.fresh("T", None);
        t.unify(c, a).unwrap();
        assert_eq!(t.resolve(c), t.resolve(a));
        assert!(matches!(t.unify(c, D::Fixed(3)), Err(DimMismatch::Pinned { .. })));
        let (d, e) = (t.fresh("U", None), t.fresh("V", None));
        t.unify(d, D::Fixed(4)).unwrap();
        assert!(matches!(t.unify(b, d), Err(DimMismatch::Pinned { .. })), "a bound flexible class pins S");
        t.unify(e, b).unwrap();
        assert!(t.unify(e, b).is_ok());
    }

    #[test]
    fn same_class_different_offsets_fail() {
        let mut t = DimTable::default();
        let a = t.fresh("T", None);
        let D::Var(av, _) = a else { unreachable!() };
        assert!(t.unify(a, D::Var(av, -1)).is_err());
        assert!(t.unify(D::Var(av, -1), D::Fixed(0)).is_ok());
        assert!(t.unify(a, D::Fixed(2)).is_err());
    }
}
