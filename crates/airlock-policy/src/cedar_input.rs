//! Building Cedar's inputs (context, entities, entity store) from values we already hold.
//!
//! Why this reaches into `cedar-policy-core`: the public constructors (`Context::from_pairs`, `Entity::new`,
//! `Entities::from_entities`) evaluate every value as an expression and recompute the transitive closure of
//! the store on every call. For a per-request store of three or four entities that cost several times the
//! decision itself (about 10 µs of 17 µs, measured with `DECIDE_PROFILE=1 cargo bench --bench decide`). Our
//! values are plain literals and our parent sets are closed by construction (every ancestor is listed as a
//! direct parent), so we build the core types directly and skip both. The core crate is pinned to the exact
//! version `cedar-policy` uses, and `tests/cedar_input.rs` rebuilds the same inputs through the public,
//! schema-validating API and checks that every decision agrees.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cedar_policy::{Context, Entities, EntityUid};
use cedar_policy_core::ast::{self, Value};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use smol_str::SmolStr;

pub(crate) fn string(s: &str) -> Value {
    Value::from(s)
}

pub(crate) fn long(n: i64) -> Value {
    Value::from(n)
}

pub(crate) fn boolean(b: bool) -> Value {
    Value::from(b)
}

pub(crate) fn entity_ref(u: &EntityUid) -> Value {
    Value::from(ast::EntityUID::from(u.clone()))
}

pub(crate) fn set(values: impl IntoIterator<Item = Value>) -> Value {
    Value::set(values, None)
}

/// An entity whose `parents` must already include every ancestor.
pub(crate) fn entity(
    uid: &EntityUid,
    attrs: impl IntoIterator<Item = (&'static str, Value)>,
    parents: impl IntoIterator<Item = EntityUid>,
) -> ast::Entity {
    ast::Entity::new_with_attr_partial_value(
        uid.clone().into(),
        attrs.into_iter().map(|(k, v)| (SmolStr::new_static(k), v.into())),
        HashSet::new(),
        parents.into_iter().map(Into::into).collect(),
        [],
    )
}

pub(crate) fn context(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Context {
    let map: BTreeMap<SmolStr, Value> = pairs.into_iter().map(|(k, v)| (SmolStr::new_static(k), v)).collect();
    Context::from(ast::Context::Value(Arc::new(map)))
}

/// A store of entities whose parent sets are transitively closed; no closure is computed. Entities are shared,
/// not copied, so prebuilt agents and cached hosts cost a reference count.
pub(crate) fn store(entities: Vec<Arc<ast::Entity>>) -> Result<Entities, String> {
    let core = CoreEntities::new()
        .add_entities(
            entities,
            None::<&NoEntitiesSchema>,
            TCComputation::AssumeAlreadyComputed,
            Extensions::all_available(),
        )
        .map_err(|e| e.to_string())?;
    Ok(Entities::from(core))
}
