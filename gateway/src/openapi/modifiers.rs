//! The document's modifiers that state what the API enforces: parameter rules and the links
//! between operations.

use shared::{api, billing, ids, rules};
use utoipa::Modify;
use utoipa::openapi::RefOr;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// What the API enforces of parameters, from the rules it enforces them with (`shared::rules`,
/// `shared::api`): the pattern of every id (in a path, a filter or a cursor), the values of the
/// status filters, the `Idempotency-Key`; and the `metadata` value schema.
pub struct Rules;

impl Modify for Rules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            rules::METADATA_VALUE.to_owned(),
            RefOr::T(rules::metadata_value()),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in operations_mut(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    if let Some(schema) = parameter_schema(path, &parameter.name) {
                        parameter.schema = Some(RefOr::T(schema));
                    }
                }
            }
        }
    }
}

/// The id prefix of a resource, by the path segment that names it.
fn resource(segment: &str) -> Option<&'static str> {
    Some(match segment {
        "orders" => ids::ORDER,
        "payments" => ids::PAYMENT,
        "refunds" => ids::REFUND,
        "partners" => ids::PARTNER,
        "deliveries" => ids::DELIVERY,
        "events" => ids::EVENT,
        "dead-letters" => ids::DEAD_LETTER,
        "inbox" => ids::INBOX,
        "plans" => ids::PLAN,
        "subscriptions" => ids::SUBSCRIPTION,
        "invoices" => ids::INVOICE,
        "test-clocks" => ids::TEST_CLOCK,
        _ => return None,
    })
}

/// The id type a path lists or reads, by its last resource segment (`…/deliveries` lists
/// deliveries; `/payments/{id}/refunds` lists refunds).
fn listed(path: &str) -> Option<&'static str> {
    resource(
        path.trim_end_matches('/')
            .rsplit('/')
            .find(|segment| !segment.starts_with('{'))?,
    )
}

fn parameter_schema(path: &str, name: &str) -> Option<Schema> {
    let id = |prefix: &str| -> Schema { rules::string(&rules::id_pattern(prefix)).into() };
    let statuses = |values: &[&str]| -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .into()
    };
    Some(match name {
        // `/orders/{id}/checkout`: the id of the resource the segment before it names.
        "id" => id(resource(path.split("/{id}").next()?.rsplit('/').next()?)?),
        "delivery_id" | "event_id" | "order_id" | "subscription_id" => id(match name {
            "delivery_id" => ids::DELIVERY,
            "event_id" => ids::EVENT,
            "subscription_id" => ids::SUBSCRIPTION,
            _ => ids::ORDER,
        }),
        // Sorted by amount, an order list's cursor is `<amount>.<id>`.
        "cursor" if path == "/api/v1/orders" => rules::string(&format!(
            "^(?:[0-9]+\\.)?{}",
            &rules::id_pattern(ids::ORDER)[1..]
        ))
        .into(),
        "cursor" => id(listed(path)?),
        "item_id" => id(ids::ORDER_ITEM),
        "sort" if path == "/api/v1/orders" => {
            statuses(&["-created_at", "created_at", "-amount", "amount"])
        }
        "status" => match listed(path)? {
            p if p == ids::ORDER => statuses(&api::ORDER_STATUSES),
            p if p == ids::PAYMENT => statuses(&api::PAYMENT_STATUSES),
            p if p == ids::DELIVERY => statuses(&api::DELIVERY_STATUSES),
            p if p == ids::DEAD_LETTER => statuses(&api::DEAD_LETTER_STATUSES),
            p if p == ids::PLAN => statuses(&["active", "archived"]),
            p if p == ids::SUBSCRIPTION => statuses(&billing::SUBSCRIPTION_STATUSES),
            p if p == ids::INVOICE => statuses(&billing::INVOICE_STATUSES),
            _ => return None,
        },
        "outcome" => statuses(&api::INBOX_OUTCOMES),
        "type" => rules::text(255).into(),
        "code" => billing::plan_code(),
        "test_clock" => id(ids::TEST_CLOCK),
        "interval" => statuses(&["day", "month"]),
        "user_id" => rules::text(255).into(),
        "Idempotency-Key" => rules::string(rules::TOKEN).into(),
        _ => return None,
    })
}

/// An operation, the status of its answer, and the operations it links to with their
/// parameters' expressions.
type LinkSource<'a> = (&'a str, &'a str, &'a [(&'a str, &'a [(&'a str, &'a str)])]);

/// OpenAPI links from what creates or lists a resource to what reads or acts on it, so a
/// client (and schemathesis' stateful runs) can follow real ids.
pub struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // (operation, status, link name, target operation, parameters)
        let body_id = [("id", "$response.body#/id")];
        let first_id = [("id", "$response.body#/data/0/id")];
        let first_item = [
            ("id", "$response.body#/id"),
            ("item_id", "$response.body#/items/0/id"),
        ];
        let links: &[LinkSource] = &[
            (
                "create_order",
                "201",
                &[
                    ("get_order", &body_id),
                    ("checkout", &body_id),
                    ("cancel_order", &body_id),
                    ("update_order", &body_id),
                    ("add_order_item", &body_id),
                    ("transition_order", &body_id),
                    ("order_history", &body_id),
                    ("update_order_item", &first_item),
                    ("remove_order_item", &first_item),
                ],
            ),
            (
                "list_orders",
                "200",
                &[("get_order", &first_id), ("checkout", &first_id)],
            ),
            (
                "checkout",
                "201",
                &[
                    ("get_payment", &body_id),
                    ("verify_payment", &body_id),
                    ("cancel_payment", &body_id),
                    ("create_refund", &body_id),
                    ("list_refunds", &body_id),
                ],
            ),
            (
                "list_payments",
                "200",
                &[
                    ("get_payment", &first_id),
                    ("create_refund", &first_id),
                    ("list_refunds", &first_id),
                ],
            ),
            (
                "create_partner",
                "201",
                &[
                    ("get_partner", &body_id),
                    ("update_partner", &body_id),
                    ("rotate_secret", &body_id),
                    ("list_deliveries", &body_id),
                    ("resend", &body_id),
                    ("recover", &body_id),
                    ("delete_partner", &body_id),
                ],
            ),
            (
                "list_partners",
                "200",
                &[
                    ("get_partner", &first_id),
                    ("list_deliveries", &first_id),
                    ("resend", &first_id),
                ],
            ),
            (
                "resend",
                "201",
                &[
                    (
                        "get_delivery",
                        &[
                            ("id", "$response.body#/partner_id"),
                            ("delivery_id", "$response.body#/id"),
                        ],
                    ),
                    ("event_deliveries", &[("id", "$response.body#/event_id")]),
                ],
            ),
            (
                "list_deliveries",
                "200",
                &[
                    (
                        "get_delivery",
                        &[
                            ("id", "$request.path.id"),
                            ("delivery_id", "$response.body#/data/0/id"),
                        ],
                    ),
                    (
                        "event_deliveries",
                        &[("id", "$response.body#/data/0/event_id")],
                    ),
                ],
            ),
            (
                "create_plan",
                "201",
                &[("get_plan", &body_id), ("archive_plan", &body_id)],
            ),
            (
                "create_subscription",
                "201",
                &[
                    ("get_subscription", &body_id),
                    ("cancel_subscription", &body_id),
                    ("pause_subscription", &body_id),
                    ("resume_subscription", &body_id),
                    ("change_plan", &body_id),
                    ("set_payment_method", &body_id),
                    (
                        "get_invoice",
                        &[("id", "$response.body#/latest_invoice_id")],
                    ),
                ],
            ),
            (
                "list_invoices",
                "200",
                &[
                    ("get_invoice", &first_id),
                    ("invoice_html", &first_id),
                    ("invoice_pdf", &first_id),
                    ("invoice_checkout", &first_id),
                ],
            ),
            (
                "create_clock",
                "200",
                &[("get_clock", &body_id), ("advance_clock", &body_id)],
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let Some(op_id) = operation.operation_id.clone() else {
                    continue;
                };
                for (source, status, targets) in links {
                    if *source != op_id {
                        continue;
                    }
                    let Some(RefOr::T(response)) = operation.responses.responses.get_mut(*status)
                    else {
                        continue;
                    };
                    for (target, parameters) in *targets {
                        let mut link = LinkBuilder::new().operation_id(*target);
                        for (name, expression) in *parameters {
                            link = link.parameter(*name, *expression);
                        }
                        response
                            .links
                            .insert(target.to_string(), RefOr::T(link.build()));
                    }
                }
            }
        }
    }
}

/// The operations of a path item (the API uses these four methods).
pub fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}
