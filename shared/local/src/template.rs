//! Reads Purser's wiring out of the SAM template: every function's
//! `EventBridgeRule`, `Schedule`/`ScheduleV2` and `HttpApi` events. The
//! local runtime runs exactly this, so local and cloud cannot drift apart.

use std::collections::BTreeMap;
use std::time::Duration;

use purser_eventbridge::{EventPattern, ScheduleExpression};
use serde_json::{Map, Value};
use serde_yaml_ng::value::TaggedValue;

/// The template Purser ships, compiled into every binary that runs it.
pub const BUILTIN_TEMPLATE: &str = include_str!("../../../infra/template.yaml");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

/// What to substitute for the template's parameters and pseudo parameters
/// when it runs locally.
#[derive(Debug, Clone)]
pub struct LocalContext {
    pub account_id: String,
    pub region: String,
    pub parameters: BTreeMap<String, String>,
}

impl Default for LocalContext {
    fn default() -> Self {
        Self {
            account_id: crate::LOCAL_ACCOUNT.into(),
            region: crate::LOCAL_REGION.into(),
            parameters: BTreeMap::new(),
        }
    }
}

/// How EventBridge retries a target before giving up on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub maximum_retry_attempts: u32,
    pub maximum_event_age: Duration,
}

impl Default for RetryPolicy {
    /// EventBridge's defaults: 185 retries over 24 hours.
    fn default() -> Self {
        Self {
            maximum_retry_attempts: 185,
            maximum_event_age: Duration::from_secs(86_400),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Trigger {
    Rule {
        bus: String,
        pattern: EventPattern,
        pattern_json: Value,
        retry: RetryPolicy,
        dead_letter_queue: bool,
        input: Option<Value>,
        input_path: Option<String>,
        /// The queue between the rule and the function, when the function
        /// reads its events from SQS rather than being invoked by the rule.
        queue: Option<QueueTarget>,
    },
    Schedule {
        expression: ScheduleExpression,
        /// `ScheduleV2` (EventBridge Scheduler) delivers its input as is;
        /// `Schedule` (a scheduled rule) delivers a "Scheduled Event".
        scheduler: bool,
        input: Option<Value>,
        enabled: bool,
        retry: RetryPolicy,
        dead_letter_queue: bool,
    },
    HttpRoute {
        method: String,
        path: String,
    },
}

/// An SQS queue that a rule sends to and a function reads from (an SQS
/// fair queue: `message_group`, a JSON path into the event such as
/// `$.account`, names the tenant whose backlog must not delay the others).
#[derive(Debug, Clone)]
pub struct QueueTarget {
    /// The queue's logical id.
    pub name: String,
    pub arn: String,
    pub message_group: Option<String>,
}

/// One event source of one function, named `Function.Event` like the
/// resources SAM generates for it.
#[derive(Debug, Clone)]
pub struct Wire {
    pub function: String,
    pub event: String,
    pub trigger: Trigger,
}

impl Wire {
    pub fn name(&self) -> String {
        format!("{}.{}", self.function, self.event)
    }
}

#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub timeout: Duration,
    pub code_uri: Option<String>,
    pub binary: Option<String>,
}

/// Everything the local runtime needs from the template.
#[derive(Debug, Clone)]
pub struct Wiring {
    pub functions: Vec<FunctionSpec>,
    pub wires: Vec<Wire>,
    /// Event buses the template defines (by name), plus `default`.
    pub buses: Vec<String>,
}

/// A parsed template: the raw document with intrinsic functions in their
/// long JSON form (`!Ref X` becomes `{"Ref": "X"}`).
#[derive(Debug, Clone)]
pub struct Template {
    pub document: Value,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
        let document = yaml_to_json(yaml, "template")?;
        if !document.get("Resources").is_some_and(Value::is_object) {
            return Err(invalid("template", "has no Resources section"));
        }
        Ok(Self { document })
    }

    pub fn builtin() -> Self {
        Self::parse(BUILTIN_TEMPLATE).expect("the built-in template is valid (tests check it)")
    }

    pub fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.document["Resources"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.iter())
    }

    fn resource_type<'a>(&self, resource: &'a Value) -> &'a str {
        resource.get("Type").and_then(Value::as_str).unwrap_or("")
    }

    /// The function a route's `Target` (`integrations/${Integration}`)
    /// reaches: the integration's `IntegrationUri`, `!GetAtt Function.Arn`.
    fn route_function(&self, route: &Value, id: &str) -> Result<String, TemplateError> {
        let target = route.pointer("/Properties/Target");
        let integration = target
            .and_then(|t| t.get("Fn::Sub").or(Some(t)))
            .and_then(Value::as_str)
            .and_then(|t| t.strip_prefix("integrations/${"))
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| {
                invalid(
                    format!("{id}.Target"),
                    "must be !Sub \"integrations/${Integration}\"",
                )
            })?;
        let uri = self.document["Resources"]
            .get(integration)
            .and_then(|i| i.pointer("/Properties/IntegrationUri/Fn::GetAtt"));
        let function = match uri {
            Some(Value::Array(parts)) => parts.first().and_then(Value::as_str),
            Some(Value::String(dotted)) => dotted.strip_suffix(".Arn"),
            _ => None,
        };
        function.map(String::from).ok_or_else(|| {
            invalid(
                format!("{integration}.IntegrationUri"),
                "must be !GetAtt <function>.Arn",
            )
        })
    }

    /// Extracts the wiring, resolving intrinsics against `ctx`.
    pub fn wiring(&self, ctx: &LocalContext) -> Result<Wiring, TemplateError> {
        let resolver = Resolver {
            template: self,
            ctx,
        };
        let globals = self
            .document
            .pointer("/Globals/Function")
            .cloned()
            .unwrap_or(Value::Null);
        let mut buses = vec!["default".to_string()];
        let mut functions = Vec::new();
        let mut wires = Vec::new();
        for (id, resource) in self.resources() {
            match self.resource_type(resource) {
                "AWS::Events::EventBus" => {
                    let name = resource.pointer("/Properties/Name").cloned();
                    let name = resolver.string(&name.unwrap_or(Value::Null), id)?;
                    buses.push(name);
                }
                "AWS::Serverless::Function" => {
                    let props = resource.get("Properties").cloned().unwrap_or_default();
                    let timeout = props
                        .get("Timeout")
                        .or_else(|| globals.get("Timeout"))
                        .and_then(Value::as_u64)
                        .unwrap_or(3);
                    functions.push(FunctionSpec {
                        logical_id: id.clone(),
                        timeout: Duration::from_secs(timeout),
                        code_uri: props
                            .get("CodeUri")
                            .and_then(Value::as_str)
                            .map(String::from),
                        binary: resource
                            .pointer("/Metadata/BuildProperties/Binary")
                            .and_then(Value::as_str)
                            .map(String::from),
                    });
                    let events = props.get("Events").and_then(Value::as_object);
                    for (event, spec) in events.into_iter().flatten() {
                        let at = format!("{id}.Events.{event}");
                        if let Some(trigger) = resolver.trigger(spec, &at)? {
                            wires.push(Wire {
                                function: id.clone(),
                                event: event.clone(),
                                trigger,
                            });
                        }
                    }
                }
                // A function reading a queue through an event source mapping
                // of its own (what SAM's SQS event makes, without the
                // managed policy SAM attaches with it).
                "AWS::Lambda::EventSourceMapping" => {
                    let props = resource.get("Properties").cloned().unwrap_or_default();
                    let function = props
                        .pointer("/FunctionName/Ref")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            invalid(format!("{id}.FunctionName"), "must be !Ref <function>")
                        })?;
                    let Some(queue) = props.get("EventSourceArn").and_then(arn_of) else {
                        // Streams and other sources have no local equivalent.
                        continue;
                    };
                    wires.push(Wire {
                        function: function.to_string(),
                        event: id.clone(),
                        trigger: resolver.queued_rule(queue, id)?,
                    });
                }
                // A route of an HttpApi declared as plain ApiGatewayV2
                // resources (the console's): its integration names the
                // function.
                "AWS::ApiGatewayV2::Route" => {
                    let (method, path) = resource
                        .pointer("/Properties/RouteKey")
                        .and_then(Value::as_str)
                        .and_then(|key| key.split_once(' '))
                        .ok_or_else(|| {
                            invalid(format!("{id}.RouteKey"), "must be \"METHOD /path\"")
                        })?;
                    wires.push(Wire {
                        function: self.route_function(resource, id)?,
                        event: id.clone(),
                        trigger: Trigger::HttpRoute {
                            method: method.to_ascii_uppercase(),
                            path: path.to_string(),
                        },
                    });
                }
                _ => {}
            }
        }
        Ok(Wiring {
            functions,
            wires,
            buses,
        })
    }
}

struct Resolver<'a> {
    template: &'a Template,
    ctx: &'a LocalContext,
}

impl Resolver<'_> {
    fn trigger(&self, spec: &Value, at: &str) -> Result<Option<Trigger>, TemplateError> {
        let kind = spec.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = spec.get("Properties").cloned().unwrap_or_default();
        let retry = self.retry_policy(&props, at)?;
        let dead_letter_queue = props.get("DeadLetterConfig").is_some();
        Ok(Some(match kind {
            "EventBridgeRule" | "CloudWatchEvent" => {
                let raw = props
                    .get("Pattern")
                    .ok_or_else(|| invalid(at, "an EventBridgeRule needs a Pattern"))?;
                let pattern_json = self.resolve(raw, at)?;
                let pattern = EventPattern::from_value(&pattern_json)
                    .map_err(|e| invalid(format!("{at}.Pattern"), e.to_string()))?;
                let bus = match props.get("EventBusName") {
                    Some(name) => self.string(name, at)?,
                    None => "default".into(),
                };
                let input = match props.get("Input") {
                    Some(text) => Some(self.json_text(text, &format!("{at}.Input"))?),
                    None => None,
                };
                Trigger::Rule {
                    bus,
                    pattern,
                    pattern_json,
                    retry,
                    dead_letter_queue,
                    input,
                    input_path: props
                        .get("InputPath")
                        .and_then(Value::as_str)
                        .map(String::from),
                    queue: None,
                }
            }
            "SQS" => {
                let queue = props
                    .get("Queue")
                    .and_then(arn_of)
                    .ok_or_else(|| invalid(format!("{at}.Queue"), "must be !GetAtt <queue>.Arn"))?;
                self.queued_rule(queue, at)?
            }
            "Schedule" | "ScheduleV2" => {
                let scheduler = kind == "ScheduleV2";
                let field = if scheduler {
                    "ScheduleExpression"
                } else {
                    "Schedule"
                };
                let text = props
                    .get(field)
                    .ok_or_else(|| invalid(at, format!("a {kind} event needs {field}")))?;
                let text = self.string(text, at)?;
                let expression = ScheduleExpression::parse(&text)
                    .map_err(|e| invalid(format!("{at}.{field}"), e.to_string()))?;
                let enabled = match props.get("State").and_then(Value::as_str) {
                    Some(state) => state == "ENABLED",
                    None => props
                        .get("Enabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                };
                let input = match props.get("Input") {
                    Some(text) => Some(self.json_text(text, &format!("{at}.Input"))?),
                    None => None,
                };
                Trigger::Schedule {
                    expression,
                    scheduler,
                    input,
                    enabled,
                    retry,
                    dead_letter_queue,
                }
            }
            "HttpApi" => {
                let method = props
                    .get("Method")
                    .and_then(Value::as_str)
                    .unwrap_or("ANY")
                    .to_ascii_uppercase();
                let path = props
                    .get("Path")
                    .and_then(Value::as_str)
                    .unwrap_or("/$default")
                    .to_string();
                Trigger::HttpRoute { method, path }
            }
            // Other event sources (S3, streams, …) have no local equivalent yet;
            // the wiring test lists which types the template may use.
            _ => return Ok(None),
        }))
    }

    /// An SQS event source fed by a rule of the template (`AWS::Events::Rule`
    /// with the queue as a target): locally, that rule delivering to the
    /// function, as the SQS event the function receives on AWS. A queue no
    /// rule of the template feeds has nothing to run locally, and is refused.
    fn queued_rule(&self, queue: &str, at: &str) -> Result<Trigger, TemplateError> {
        let feeding = self
            .template
            .resources()
            .filter(|(_, r)| self.template.resource_type(r) == "AWS::Events::Rule")
            .flat_map(|(id, rule)| {
                let targets = rule
                    .pointer("/Properties/Targets")
                    .and_then(Value::as_array);
                targets
                    .into_iter()
                    .flatten()
                    .filter(|t| t.get("Arn").and_then(arn_of) == Some(queue))
                    .map(move |t| (id, rule, t))
            })
            .next();
        let Some((rule_id, rule, target)) = feeding else {
            return Err(invalid(
                at,
                format!(
                    "no AWS::Events::Rule of the template sends to {queue}, so nothing would reach it"
                ),
            ));
        };
        let raw = rule
            .pointer("/Properties/EventPattern")
            .ok_or_else(|| invalid(rule_id.as_str(), "a rule needs an EventPattern"))?;
        let pattern_json = self.resolve(raw, rule_id)?;
        let pattern = EventPattern::from_value(&pattern_json)
            .map_err(|e| invalid(format!("{rule_id}.EventPattern"), e.to_string()))?;
        let bus = match rule.pointer("/Properties/EventBusName") {
            Some(name) => self.string(name, rule_id)?,
            None => "default".into(),
        };
        Ok(Trigger::Rule {
            bus,
            pattern,
            pattern_json,
            retry: self.retry_policy(target, rule_id)?,
            dead_letter_queue: target.get("DeadLetterConfig").is_some(),
            input: None,
            input_path: None,
            queue: Some(QueueTarget {
                name: queue.to_string(),
                arn: format!(
                    "arn:aws:sqs:{}:{}:{queue}",
                    self.ctx.region, self.ctx.account_id
                ),
                message_group: target
                    .pointer("/SqsParameters/MessageGroupId")
                    .and_then(Value::as_str)
                    .map(String::from),
            }),
        })
    }

    fn retry_policy(&self, props: &Value, at: &str) -> Result<RetryPolicy, TemplateError> {
        let mut policy = RetryPolicy::default();
        let Some(spec) = props.get("RetryPolicy") else {
            return Ok(policy);
        };
        if let Some(n) = spec.get("MaximumRetryAttempts") {
            policy.maximum_retry_attempts =
                n.as_u64().filter(|n| *n <= 185).ok_or_else(|| {
                    invalid(at, "RetryPolicy.MaximumRetryAttempts must be 0..=185")
                })? as u32;
        }
        if let Some(n) = spec.get("MaximumEventAgeInSeconds") {
            let secs = n
                .as_u64()
                .filter(|n| (60..=86_400).contains(n))
                .ok_or_else(|| {
                    invalid(
                        at,
                        "RetryPolicy.MaximumEventAgeInSeconds must be 60..=86400",
                    )
                })?;
            policy.maximum_event_age = Duration::from_secs(secs);
        }
        Ok(policy)
    }

    fn json_text(&self, value: &Value, at: &str) -> Result<Value, TemplateError> {
        let text = self.string(value, at)?;
        serde_json::from_str(&text).map_err(|e| invalid(at, format!("is not JSON: {e}")))
    }

    fn string(&self, value: &Value, at: &str) -> Result<String, TemplateError> {
        match self.resolve(value, at)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(invalid(at, format!("expected a string, found {other}"))),
        }
    }

    /// Resolves the intrinsic functions a wiring may use: `Ref` to
    /// parameters, pseudo parameters and event buses, `Fn::GetAtt` of a bus's
    /// `Arn`/`Name`, `Fn::Sub` and `Fn::Join`.
    fn resolve(&self, value: &Value, at: &str) -> Result<Value, TemplateError> {
        match value {
            Value::Array(items) => items
                .iter()
                .map(|v| self.resolve(v, at))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => self.reference(arg.as_str().unwrap_or_default(), at),
                    "Fn::GetAtt" => self.get_att(arg, at),
                    "Fn::Sub" => self.sub(arg, at).map(Value::String),
                    "Fn::Join" => self.join(arg, at),
                    k if k.starts_with("Fn::") => {
                        Err(invalid(at, format!("{k} is not supported in local wiring")))
                    }
                    _ => Ok(Value::Object(Map::from_iter([(
                        key.clone(),
                        self.resolve(arg, at)?,
                    )]))),
                }
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), self.resolve(v, at)?)))
                .collect::<Result<Map<_, _>, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn reference(&self, name: &str, at: &str) -> Result<Value, TemplateError> {
        let pseudo = match name {
            "AWS::AccountId" => Some(self.ctx.account_id.clone()),
            "AWS::Region" => Some(self.ctx.region.clone()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            "AWS::StackName" => Some("purser".into()),
            _ => None,
        };
        if let Some(value) = pseudo {
            return Ok(Value::String(value));
        }
        if let Some(param) = self
            .template
            .document
            .pointer(&format!("/Parameters/{name}"))
        {
            let text = match self.ctx.parameters.get(name) {
                Some(v) => v.clone(),
                None => match param.get("Default") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => {
                        return Err(invalid(
                            at,
                            format!("parameter {name} has no Default and no local value"),
                        ));
                    }
                },
            };
            let list = param.get("Type").and_then(Value::as_str) == Some("CommaDelimitedList");
            return Ok(if list {
                Value::Array(
                    text.split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.trim().into()))
                        .collect(),
                )
            } else {
                Value::String(text)
            });
        }
        match self
            .template
            .document
            .pointer(&format!("/Resources/{name}"))
        {
            Some(r) if r.get("Type").and_then(Value::as_str) == Some("AWS::Events::EventBus") => {
                let bus_name = r.pointer("/Properties/Name").cloned().unwrap_or_default();
                self.resolve(&bus_name, at)
            }
            // Other resources are named by their logical id locally.
            Some(_) => Ok(Value::String(name.into())),
            None => Err(invalid(at, format!("Ref to unknown name {name}"))),
        }
    }

    fn get_att(&self, arg: &Value, at: &str) -> Result<Value, TemplateError> {
        let (resource, attribute) = match arg {
            Value::String(s) => s.split_once('.').unwrap_or((s, "")),
            Value::Array(parts) if parts.len() == 2 => (
                parts[0].as_str().unwrap_or_default(),
                parts[1].as_str().unwrap_or_default(),
            ),
            _ => return Err(invalid(at, "Fn::GetAtt takes Resource.Attribute")),
        };
        let name = self.reference(resource, at)?;
        let name = name.as_str().unwrap_or(resource);
        let ctx = self.ctx;
        match attribute {
            "Name" => Ok(Value::String(name.into())),
            "Arn" => Ok(Value::String(format!(
                "arn:aws:events:{}:{}:event-bus/{name}",
                ctx.region, ctx.account_id
            ))),
            _ => Err(invalid(
                at,
                format!("Fn::GetAtt {resource}.{attribute} is not supported locally"),
            )),
        }
    }

    fn sub(&self, arg: &Value, at: &str) -> Result<String, TemplateError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), None),
            Value::Array(parts) if parts.len() == 2 => {
                (parts[0].as_str().unwrap_or_default(), parts[1].as_object())
            }
            _ => return Err(invalid(at, "Fn::Sub takes a string or [string, map]")),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| invalid(at, "Fn::Sub has an unclosed ${"))?;
            let name = &after[..end];
            let value = match vars.and_then(|v| v.get(name)) {
                Some(v) => self.resolve(v, at)?,
                None if name.contains('.') => self.get_att(&Value::String(name.into()), at)?,
                None => self.reference(name, at)?,
            };
            match value {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn join(&self, arg: &Value, at: &str) -> Result<Value, TemplateError> {
        let parts = arg.as_array().filter(|p| p.len() == 2);
        let (sep, items) = parts
            .map(|p| (p[0].as_str().unwrap_or_default(), self.resolve(&p[1], at)))
            .ok_or_else(|| invalid(at, "Fn::Join takes [separator, list]"))?;
        let items = items?;
        let texts: Vec<String> = items
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect();
        Ok(Value::String(texts.join(sep)))
    }
}

/// The resource of `!GetAtt <resource>.Arn`.
fn arn_of(value: &Value) -> Option<&str> {
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) if parts.len() == 2 && parts[1] == "Arn" => parts[0].as_str(),
        Value::String(text) => text.strip_suffix(".Arn"),
        _ => None,
    }
}

/// Converts YAML to JSON, turning CloudFormation's short-form tags into
/// their long form.
fn yaml_to_json(yaml: serde_yaml_ng::Value, at: &str) -> Result<Value, TemplateError> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(|v| yaml_to_json(v, at))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(invalid(at, format!("unsupported mapping key {other:?}"))),
                };
                let value = yaml_to_json(v, &key)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let TaggedValue { tag, value } = *tagged;
            let name = tag.to_string();
            let name = name.trim_start_matches('!');
            let long = if name == "Ref" || name == "Condition" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            let mut inner = yaml_to_json(value, at)?;
            // `!GetAtt A.B` is the short form of `Fn::GetAtt: [A, B]`.
            if long == "Fn::GetAtt"
                && let Value::String(s) = &inner
                && let Some((r, a)) = s.split_once('.')
            {
                inner = Value::Array(vec![Value::String(r.into()), Value::String(a.into())]);
            }
            Value::Object(Map::from_iter([(long, inner)]))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: { Type: String, Default: dev }
Globals:
  Function: { Timeout: 12 }
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: { Name: !Sub "purser-${Stage}" }
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        OnThing:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern:
              source: [ci]
              account: [!Ref AWS::AccountId]
            RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 120 }
            DeadLetterConfig: { Arn: !GetAtt Dlq.Arn }
        Tick:
          Type: Schedule
          Properties: { Schedule: rate(5 minutes), Input: '{"k": 1}' }
        Get:
          Type: HttpApi
          Properties: { Method: get, Path: "/things/{id}" }
"#;

    #[test]
    fn reads_rules_schedules_and_routes() {
        let template = Template::parse(TEMPLATE).unwrap();
        let wiring = template.wiring(&LocalContext::default()).unwrap();
        assert_eq!(wiring.buses, ["default", "purser-dev"]);
        assert_eq!(wiring.functions[0].timeout, Duration::from_secs(12));
        assert_eq!(wiring.wires.len(), 3);
        let rule = wiring.wires.iter().find(|w| w.event == "OnThing").unwrap();
        match &rule.trigger {
            Trigger::Rule {
                bus,
                pattern_json,
                retry,
                dead_letter_queue,
                ..
            } => {
                assert_eq!(bus, "purser-dev");
                assert_eq!(pattern_json["account"][0], crate::LOCAL_ACCOUNT);
                assert_eq!(retry.maximum_retry_attempts, 3);
                assert!(dead_letter_queue);
            }
            other => panic!("not a rule: {other:?}"),
        }
        let route = wiring.wires.iter().find(|w| w.event == "Get").unwrap();
        assert!(
            matches!(&route.trigger, Trigger::HttpRoute { method, path } if method == "GET" && path == "/things/{id}")
        );
        let tick = wiring.wires.iter().find(|w| w.event == "Tick").unwrap();
        assert!(
            matches!(&tick.trigger, Trigger::Schedule { input: Some(v), scheduler: false, .. } if v["k"] == 1)
        );
    }

    #[test]
    fn a_bad_pattern_names_where_it_is() {
        let bad = TEMPLATE.replace("source: [ci]", "source: ci");
        let err = Template::parse(&bad)
            .unwrap()
            .wiring(&LocalContext::default())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("Worker.Events.OnThing.Pattern"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_schedule_names_where_it_is() {
        let bad = TEMPLATE.replace("rate(5 minutes)", "rate(5 minute)");
        let err = Template::parse(&bad)
            .unwrap()
            .wiring(&LocalContext::default())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("Worker.Events.Tick.Schedule"),
            "{err}"
        );
    }

    #[test]
    fn the_builtin_template_parses() {
        let wiring = Template::builtin()
            .wiring(&LocalContext::default())
            .unwrap();
        assert!(wiring.buses.contains(&"purser".to_string()));
        assert!(
            wiring
                .functions
                .iter()
                .any(|f| f.logical_id == "ApiFunction")
        );
    }
}
