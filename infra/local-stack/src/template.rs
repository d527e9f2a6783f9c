//! Reads template.yaml and resolves the intrinsic functions the local stack needs (`Ref`,
//! `Fn::Sub`, `Fn::GetAtt`, `Fn::Join`, `Fn::Select`), so local resources get exactly the names,
//! ARNs and environment variables a deployment would. An intrinsic it cannot resolve is an
//! error naming it, never a silent guess.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

pub const ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("{0}")]
    Resolve(String),
}

/// One resource, with its properties still unresolved.
#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Yaml,
    pub metadata: Yaml,
}

/// Names and addresses of a resource as created.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub name: String,
    pub arn: String,
    /// Queues only: the queue URL (what `Ref` returns for a queue).
    pub url: Option<String>,
}

pub struct Template {
    pub resources: Vec<Resource>,
    parameters: HashMap<String, String>,
    globals_function: Yaml,
    pub region: String,
    pub stack_name: String,
    pub physical: HashMap<String, Physical>,
}

impl Template {
    pub fn load(path: &Path, region: &str, overrides: &HashMap<String, String>) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError::Read(path.display().to_string(), e))?;
        Self::parse(&text, region, overrides)
    }

    pub fn parse(text: &str, region: &str, overrides: &HashMap<String, String>) -> Result<Self, TemplateError> {
        let doc: Yaml = serde_yaml::from_str(text)?;
        let mut parameters = HashMap::new();
        if let Some(params) = doc.get("Parameters").and_then(Yaml::as_mapping) {
            for (k, v) in params {
                let name = k.as_str().unwrap_or_default().to_string();
                let value = match (overrides.get(&name), v.get("Default")) {
                    (Some(o), _) => o.clone(),
                    (None, Some(d)) => scalar(d),
                    // A secret the deployer must supply (such as the secrets key): locally, a
                    // fresh random one (32 bytes, base64) for this run.
                    (None, None) if v.get("NoEcho").and_then(Yaml::as_bool) == Some(true) => relay_core::secrets::SecretBox::generate_key(),
                    (None, None) => {
                        return Err(TemplateError::Resolve(format!(
                            "parameter {name} has no Default; set it with RELAY_LOCAL_PARAMS={name}=..."
                        )))
                    }
                };
                parameters.insert(name.clone(), value);
            }
        }
        let mut resources = Vec::new();
        if let Some(res) = doc.get("Resources").and_then(Yaml::as_mapping) {
            for (k, v) in res {
                resources.push(Resource {
                    logical_id: k.as_str().unwrap_or_default().to_string(),
                    kind: v.get("Type").and_then(Yaml::as_str).unwrap_or_default().to_string(),
                    properties: v.get("Properties").cloned().unwrap_or(Yaml::Null),
                    metadata: v.get("Metadata").cloned().unwrap_or(Yaml::Null),
                });
            }
        }
        let globals_function = doc.get("Globals").and_then(|g| g.get("Function")).cloned().unwrap_or(Yaml::Null);
        let stack_name = overrides.get("AWS::StackName").cloned().unwrap_or_else(|| "relay-local".into());
        let mut t = Self { resources, parameters, globals_function, region: region.to_string(), stack_name, physical: HashMap::new() };
        t.name_resources()?;
        Ok(t)
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind == kind)
    }

    /// Gives every resource its physical name and ARN, as CloudFormation would.
    fn name_resources(&mut self) -> Result<(), TemplateError> {
        let mut physical = HashMap::new();
        for r in &self.resources {
            let name_prop = match r.kind.as_str() {
                "AWS::DynamoDB::Table" => "TableName",
                "AWS::SQS::Queue" => "QueueName",
                "AWS::Events::EventBus" | "AWS::Events::Rule" | "AWS::SES::ConfigurationSet" => "Name",
                "AWS::Events::Archive" => "ArchiveName",
                "AWS::S3::Bucket" => "BucketName",
                "AWS::Serverless::Function" => "FunctionName",
                _ => "",
            };
            let explicit = match r.properties.get(name_prop) {
                Some(v) if !name_prop.is_empty() => Some(self.resolve(v)?.as_str().unwrap_or_default().to_string()),
                _ => None,
            };
            let mut name = explicit.unwrap_or_else(|| format!("{}-{}", self.stack_name, r.logical_id));
            if r.kind == "AWS::S3::Bucket" {
                name = name.to_lowercase();
            }
            if r.kind == "AWS::SQS::Queue"
                && r.properties.get("FifoQueue").and_then(Yaml::as_bool) == Some(true)
                && !name.ends_with(".fifo")
            {
                name.push_str(".fifo");
            }
            let region = &self.region;
            let arn = match r.kind.as_str() {
                "AWS::DynamoDB::Table" => {
                    format!("arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{name}")
                }
                "AWS::SQS::Queue" => format!("arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"),
                "AWS::Events::EventBus" => {
                    format!("arn:aws:events:{region}:{ACCOUNT_ID}:event-bus/{name}")
                }
                "AWS::Events::Rule" => format!("arn:aws:events:{region}:{ACCOUNT_ID}:rule/{name}"),
                "AWS::Events::Archive" => {
                    format!("arn:aws:events:{region}:{ACCOUNT_ID}:archive/{name}")
                }
                "AWS::S3::Bucket" => format!("arn:aws:s3:::{name}"),
                "AWS::Serverless::Function" => {
                    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
                }
                _ => format!("arn:aws:local:{region}:{ACCOUNT_ID}:{}/{name}", r.logical_id),
            };
            physical.insert(r.logical_id.clone(), Physical { name, arn, url: None });
        }
        self.physical = physical;
        Ok(())
    }

    /// Function properties with `Globals.Function` merged underneath (maps merge, the
    /// function's own values win), as SAM does.
    pub fn function_properties(&self, r: &Resource) -> Yaml {
        merge(&self.globals_function, &r.properties)
    }

    /// Resolves a YAML value into JSON, evaluating intrinsic functions.
    pub fn resolve(&self, v: &Yaml) -> Result<Json, TemplateError> {
        Ok(match v {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::to_value(n).unwrap_or(Json::Null),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => Json::Array(items.iter().map(|i| self.resolve(i)).collect::<Result<_, _>>()?),
            Yaml::Tagged(t) => {
                let tag = t.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &t.value)?
            }
            Yaml::Mapping(m) => {
                if m.len() == 1 {
                    if let Some((Yaml::String(k), arg)) = m.iter().next() {
                        if k == "Ref" || k.starts_with("Fn::") {
                            return self.intrinsic(k.trim_start_matches("Fn::"), arg);
                        }
                    }
                }
                let mut out = Map::new();
                for (k, val) in m {
                    out.insert(scalar(k), self.resolve(val)?);
                }
                Json::Object(out)
            }
        })
    }

    fn intrinsic(&self, name: &str, arg: &Yaml) -> Result<Json, TemplateError> {
        match name {
            "Ref" => self.reference(arg.as_str().unwrap_or_default()).map(Json::String),
            "GetAtt" => {
                let (res, attr) = match arg {
                    Yaml::String(s) => s.split_once('.').map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or_default(),
                    Yaml::Sequence(parts) if parts.len() == 2 => (scalar(&parts[0]), scalar(&parts[1])),
                    _ => return Err(TemplateError::Resolve(format!("malformed GetAtt {arg:?}"))),
                };
                self.attribute(&res, &attr).map(Json::String)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Yaml::String(s) => (s.clone(), Map::new()),
                    Yaml::Sequence(parts) if parts.len() == 2 => {
                        let vars = match self.resolve(&parts[1])? {
                            Json::Object(m) => m,
                            _ => Map::new(),
                        };
                        (scalar(&parts[0]), vars)
                    }
                    _ => return Err(TemplateError::Resolve(format!("malformed Sub {arg:?}"))),
                };
                self.substitute(&text, &vars).map(Json::String)
            }
            "Join" => {
                let parts = self.resolve(arg)?;
                let (Some(delim), Some(items)) = (parts.get(0).and_then(Json::as_str), parts.get(1).and_then(Json::as_array)) else {
                    return Err(TemplateError::Resolve(format!("malformed Join {arg:?}")));
                };
                Ok(Json::String(items.iter().map(json_scalar).collect::<Vec<_>>().join(delim)))
            }
            "Select" => {
                let parts = self.resolve(arg)?;
                let index = parts.get(0).map(json_scalar).and_then(|i| i.parse::<usize>().ok());
                match (index, parts.get(1).and_then(Json::as_array)) {
                    (Some(i), Some(items)) if i < items.len() => Ok(items[i].clone()),
                    _ => Err(TemplateError::Resolve(format!("malformed Select {arg:?}"))),
                }
            }
            other => Err(TemplateError::Resolve(format!(
                "the local stack does not support Fn::{other}; extend infra/local-stack/src/template.rs"
            ))),
        }
    }

    fn reference(&self, name: &str) -> Result<String, TemplateError> {
        match name {
            "AWS::Region" => return Ok(self.region.clone()),
            "AWS::AccountId" => return Ok(ACCOUNT_ID.into()),
            "AWS::StackName" => return Ok(self.stack_name.clone()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::NoValue" => return Ok(String::new()),
            _ => {}
        }
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        let Some(p) = self.physical.get(name) else {
            return Err(TemplateError::Resolve(format!("Ref to unknown name {name}")));
        };
        let kind = self.resources.iter().find(|r| r.logical_id == name).map(|r| r.kind.as_str()).unwrap_or_default();
        Ok(match kind {
            "AWS::SQS::Queue" => p.url.clone().unwrap_or_else(|| p.name.clone()),
            "AWS::Serverless::HttpApi" => "local".into(),
            _ => p.name.clone(),
        })
    }

    fn attribute(&self, res: &str, attr: &str) -> Result<String, TemplateError> {
        let p = self.physical.get(res).ok_or_else(|| TemplateError::Resolve(format!("GetAtt of unknown resource {res}")))?;
        match attr {
            "Arn" => Ok(p.arn.clone()),
            "Name" | "QueueName" | "TableName" => Ok(p.name.clone()),
            "QueueUrl" => Ok(p.url.clone().unwrap_or_default()),
            other => Err(TemplateError::Resolve(format!("GetAtt {res}.{other} is not supported locally"))),
        }
    }

    fn substitute(&self, text: &str, vars: &Map<String, Json>) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| TemplateError::Resolve(format!("unclosed ${{ in {text:?}")))?;
            let var = &after[..end];
            let value = if let Some(v) = vars.get(var) {
                json_scalar(v)
            } else if let Some((res, attr)) = var.split_once('.').filter(|_| !var.starts_with("AWS::")) {
                self.attribute(res, attr)?
            } else {
                self.reference(var)?
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn merge(base: &Yaml, over: &Yaml) -> Yaml {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            let mut out = b.clone();
            for (k, v) in o {
                let merged = match b.get(k) {
                    Some(bv) => merge(bv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Yaml::Mapping(out)
        }
        (_, Yaml::Null) => base.clone(),
        _ => over.clone(),
    }
}

fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

pub fn json_scalar(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Timeout: 10
    Environment: {Variables: {A: !Ref Stage, B: global}}
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Sub "relay-${Stage}-q", FifoQueue: true}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {Variables: {B: own, C: !GetAtt Q.Arn, D: !Join ["-", [x, !Ref Stage]], E: {"Fn::Sub": ["${X}/${AWS::Region}", {X: !Ref Q}]}}}
"#;

    #[test]
    fn resolves_names_globals_and_intrinsics() {
        let mut overrides = HashMap::new();
        overrides.insert("Stage".to_string(), "test".to_string());
        let mut t = Template::parse(T, "eu-west-1", &overrides).unwrap();
        assert_eq!(t.physical["Q"].name, "relay-test-q.fifo");
        t.physical.get_mut("Q").unwrap().url = Some("http://q".into());
        let f = t.resources.iter().find(|r| r.logical_id == "Fn").unwrap();
        let props = t.resolve(&t.function_properties(f)).unwrap();
        assert_eq!(props["Timeout"], 10);
        let env = &props["Environment"]["Variables"];
        assert_eq!(env["A"], "test");
        assert_eq!(env["B"], "own");
        assert_eq!(env["C"], "arn:aws:sqs:eu-west-1:123456789012:relay-test-q.fifo");
        assert_eq!(env["D"], "x-test");
        assert_eq!(env["E"], "http://q/eu-west-1");
    }

    #[test]
    fn an_unsupported_intrinsic_is_an_error_not_a_guess() {
        let t = Template::parse("Resources: {}", "us-east-1", &HashMap::new()).unwrap();
        let v: Yaml = serde_yaml::from_str("!If [c, a, b]").unwrap();
        assert!(t.resolve(&v).is_err());
    }
}
