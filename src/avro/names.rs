//! Named types of a schema (records, enums, fixed), so that references to
//! them by name can be followed while encoding.

use std::collections::HashMap;

use apache_avro::schema::Name;
use apache_avro::Schema;

/// The named types defined anywhere in one schema.
#[derive(Debug, Clone, Default)]
pub struct Names(HashMap<Name, Schema>);

impl Names {
    /// Collects the named types of `root`.
    pub fn of(root: &Schema) -> Self {
        let mut names = Self::default();
        names.collect(root);
        names
    }

    fn collect(&mut self, s: &Schema) {
        match s {
            Schema::Record(r) => {
                self.0.insert(r.name.clone(), s.clone());
                for f in &r.fields {
                    self.collect(&f.schema);
                }
            }
            Schema::Enum(e) => {
                self.0.insert(e.name.clone(), s.clone());
            }
            Schema::Fixed(f) => {
                self.0.insert(f.name.clone(), s.clone());
            }
            Schema::Array(a) => self.collect(&a.items),
            Schema::Map(m) => self.collect(&m.types),
            Schema::Union(u) => u.variants().iter().for_each(|v| self.collect(v)),
            _ => {}
        }
    }

    /// `s`, or the type it names when it is a reference.
    pub fn resolve<'s>(&'s self, s: &'s Schema) -> &'s Schema {
        match s {
            Schema::Ref { name } => self.0.get(name).unwrap_or(s),
            other => other,
        }
    }
}
