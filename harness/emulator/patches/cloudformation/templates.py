"""Patches to how moto reads CloudFormation templates, and what it refuses up front.

- Fn::Sub with a variables map keeps "$$" (moto turned it into "$"); Fn::Sub
  variables count as references, as Ref does.
- Fn::GetAtt reads "A.Outputs.X" as [A, Outputs.X], in the YAML short form and in
  Fn::Sub (moto split on every dot, and returned the short form's list unparsed).
- DescribeStackResources leaves out resources whose Condition is false.
- CreateStack, CreateChangeSet and UpdateStack refuse, with ValidationError worded as
  AWS words it, a template that is not JSON/YAML, has no Resources, has a resource
  without a Type or of a type the local AWS does not create, a Ref or Fn::GetAtt to
  nothing, an attribute the resource type does not have (or that the local AWS
  cannot resolve); and, as InsufficientCapabilitiesException, IAM resources without
  the capability they need.
- ValidateTemplate answers as AWS does (moto ran cfn-lint and reported its first
  warning as "Stack with id <warning> does not exist").
"""

from __future__ import annotations

import re

from harness.emulator.patches.cloudformation import attributes

# Pseudo parameters a Ref may name without declaring them.
PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
IAM_TYPES = frozenset(
    {
        "AWS::IAM::AccessKey",
        "AWS::IAM::Group",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::IAM::User",
        "AWS::IAM::UserToGroupAddition",
    }
)
# The properties that give an IAM resource a custom name, which needs CAPABILITY_NAMED_IAM.
IAM_NAME_PROPERTIES = ("RoleName", "GroupName", "UserName", "ManagedPolicyName", "InstanceProfileName")
_SUB_VARIABLE = re.compile(r"\$\{(?!!)([A-Za-z0-9_:.]+)\}")


def leave_conditioned_out_resources_unlisted() -> None:
    """A resource whose Condition is false was listed by DescribeStackResources as an
    entry with no LogicalResourceId; AWS does not list it at all."""
    from moto.cloudformation.models import Stack

    original = Stack.stack_resources.fget

    def stack_resources(stack):
        return [resource for resource in original(stack) if resource is not None]

    stack_resources.__wrapped__ = original
    Stack.stack_resources = property(stack_resources)


def substitute_sub_variables_literally() -> None:
    """Fn::Sub's [template, variables] form went through Python's string.Template, which
    turns "$$" into "$": a state machine's "$$.Execution.Input" lost its context-object
    prefix. CloudFormation replaces ${Name} and nothing else."""
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def clean_json(resource_json, resources_map):
        if isinstance(resource_json, dict) and isinstance(resource_json.get("Fn::Sub"), list):
            text, variables = resource_json["Fn::Sub"]
            values = {name: str(original(value, resources_map)) for name, value in variables.items()}
            text = re.sub(
                r"\$\{([^!}][^}]*)\}",
                lambda m: values.get(m.group(1), m.group(0)),
                original(text, resources_map),
            )
            return original({"Fn::Sub": text}, resources_map)
        return original(resource_json, resources_map)

    clean_json.__wrapped__ = original
    parsing.clean_json = clean_json


def read_get_att_as_aws() -> None:
    """`!GetAtt Child.Outputs.Arn` is [Child, Outputs.Arn]: the resource, then the whole
    attribute name. moto split the short form on every dot (and returned the list form
    of the short tag as unparsed YAML nodes), and did the same for "${Child.Outputs.Arn}"
    in Fn::Sub, so nested stacks' outputs could not be read."""
    import yaml
    from moto.cloudformation import parsing, utils

    def yaml_tag_constructor(loader, tag, node):
        if tag == "!GetAtt":
            if isinstance(node, yaml.SequenceNode):
                return {"Fn::GetAtt": loader.construct_sequence(node, deep=True)}
            return {"Fn::GetAtt": get_att_parts(node.value)}
        return original_constructor(loader, tag, node)

    original_constructor = utils.yaml_tag_constructor
    yaml_tag_constructor.__wrapped__ = original_constructor
    utils.yaml_tag_constructor = yaml_tag_constructor
    import moto.cloudformation.models as models

    models.yaml_tag_constructor = yaml_tag_constructor

    original_clean_json = parsing.clean_json

    def clean_json(resource_json, resources_map):
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            parts = resource_json["Fn::GetAtt"]
            if isinstance(parts, str) or (isinstance(parts, list) and len(parts) > 2):
                joined = parts if isinstance(parts, str) else ".".join(map(str, parts))
                resource_json = {**resource_json, "Fn::GetAtt": get_att_parts(joined)}
        return original_clean_json(resource_json, resources_map)

    clean_json.__wrapped__ = original_clean_json
    parsing.clean_json = clean_json


def get_att_parts(text: str) -> list[str]:
    """ "A.B.C" as Fn::GetAtt reads it: the resource A, the attribute B.C."""
    resource, _, attribute = text.partition(".")
    return [resource, attribute]


def count_sub_variables_as_references() -> None:
    """moto finds a resource's parameters through `Ref` only; `Fn::Sub` uses them too."""
    from moto.cloudformation import parsing

    original = parsing.get_references_from_template

    def get_references_from_template(template):
        references = original(template)
        for text in _sub_strings(template):
            references.extend(_SUB_VARIABLE.findall(text))
        return references

    get_references_from_template.__wrapped__ = original
    parsing.get_references_from_template = get_references_from_template


def _sub_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                if isinstance(text, str):
                    yield text
            else:
                yield from _sub_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _sub_strings(item)


def refuse_templates_that_cannot_be_deployed() -> None:
    """A template that is not JSON or YAML answered HTTP 500, one naming a resource type moto
    does not model was reported CREATE_COMPLETE with that resource never made, and an
    attribute moto cannot resolve made every later DescribeStacks answer HTTP 500.
    CreateStack, CreateChangeSet and UpdateStack now refuse them with ValidationError
    before anything starts."""
    from moto.cloudformation.models import CloudFormationBackend

    def checked(method_name: str, template_position: int):
        original = getattr(CloudFormationBackend, method_name)

        def method(backend, *args, **kwargs):
            template = kwargs.get(
                "template", args[template_position] if len(args) > template_position else None
            )
            if template:
                template_problem(template, backend.region_name)
            return original(backend, *args, **kwargs)

        method.__wrapped__ = original
        setattr(CloudFormationBackend, method_name, method)

    checked("create_stack", 1)  # (name, template, ...)
    checked("create_change_set", 2)  # (stack_name, change_set_name, template, ...)
    checked("update_stack", 1)  # (name, template, ...)


def parse(template: str) -> dict:
    """The template as a dict, or ValidationError worded as CloudFormation words it."""
    import json as json_module

    import yaml
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import Stack

    try:
        document = Stack.parse_template(template)
    except (yaml.YAMLError, ValueError) as ex:
        kind = "JSON" if template.lstrip().startswith("{") else "YAML"
        where = ""
        mark = getattr(ex, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        elif isinstance(ex, json_module.JSONDecodeError):
            where = f" (line {ex.lineno}, column {ex.colno})"
        raise ValidationError(message=f"Template format error: {kind} not well-formed.{where}") from None
    if not isinstance(document, dict):
        raise ValidationError(message="Template format error: unsupported structure.")
    return document


def template_problem(template: str, region: str = "us-east-1") -> dict:
    """Raise ValidationError, worded as CloudFormation words it, for a template it cannot
    deploy; return the parsed template otherwise."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    document = parse(template)
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise ValidationError(message="Template format error: At least one Resources member must be defined.")
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise ValidationError(
                message=f"Template format error: [/Resources/{logical_id}] Every Resources object must "
                "contain a Type member."
            )
    if document.get("Transform"):
        return document  # a transform names its own resource types and references
    known = get_model_map()
    unmade = sorted(
        {
            r["Type"]
            for r in resources.values()
            if r["Type"] not in known
            and r["Type"] not in NULL_MODELS
            and not r["Type"].startswith("Custom::")
        }
    )
    if unmade:
        raise ValidationError(
            message="Template format error: the local AWS does not create resource type(s) "
            f"[{', '.join(unmade)}] (it would report them created without making them)"
        )
    _check_references(document, region)
    return document


def _check_references(document: dict, region: str) -> None:
    """Ref and Fn::GetAtt name something that exists, and an attribute its type has."""
    from moto.cloudformation.exceptions import ValidationError

    resources = document["Resources"]
    declared = set(resources) | set(document.get("Parameters") or {}) | PSEUDO_PARAMETERS
    scopes = {"Resources": resources, "Outputs": document.get("Outputs") or {}}
    unresolved: set[str] = set()
    for scope, entries in scopes.items():
        for entry in entries.values():
            for kind, target in _references(entry):
                if kind == "Ref":
                    if target not in declared:
                        unresolved.add(target)
                    continue
                logical_id, attribute = target
                if logical_id not in resources:
                    raise ValidationError(
                        message="Template error: instance of Fn::GetAtt references undefined resource "
                        f"{logical_id}"
                    )
                problem = attributes.problem(resources[logical_id]["Type"], logical_id, attribute, region)
                if problem:
                    raise ValidationError(message=problem)
        if unresolved:
            raise ValidationError(
                message="Template format error: Unresolved resource dependencies "
                f"[{', '.join(sorted(unresolved))}] in the {scope} block of the template"
            )


def _references(node):
    """(kind, target) for each Ref ("Ref", name) and Fn::GetAtt ("GetAtt", (resource,
    attribute)) in a template node, Fn::Sub strings included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                yield "Ref", value
            elif key == "Fn::GetAtt" and isinstance(value, (str, list)) and value:
                joined = value if isinstance(value, str) else ".".join(str(v) for v in value)
                if all(isinstance(v, str) for v in ([value] if isinstance(value, str) else value)):
                    yield "GetAtt", tuple(get_att_parts(joined))
                else:
                    yield from _references(value)
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                if isinstance(text, str):
                    for name in _SUB_VARIABLE.findall(text):
                        if name in variables:
                            continue
                        if "." in name and not name.startswith("AWS::"):
                            yield "GetAtt", tuple(get_att_parts(name))
                        else:
                            yield "Ref", name
                yield from _references(variables)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def required_capabilities(document: dict, nested: list[dict] = ()) -> tuple[list[str], str]:
    """The capabilities AWS requires to deploy `document` with its `nested` stacks'
    templates, and the reason it gives."""
    iam = {
        f"{index}/{logical_id}": resource
        for index, each in enumerate([document, *nested])
        for logical_id, resource in (each.get("Resources") or {}).items()
        if isinstance(resource, dict) and resource.get("Type") in IAM_TYPES
    }
    if not iam:
        return [], ""
    named = any(
        name in (resource.get("Properties") or {})
        for resource in iam.values()
        for name in IAM_NAME_PROPERTIES
    )
    types = ", ".join(sorted({resource["Type"] for resource in iam.values()}))
    reason = f"The following resource(s) require capabilities: [{types}]"
    return (["CAPABILITY_NAMED_IAM"] if named else ["CAPABILITY_IAM"]), reason


def require_capabilities() -> None:
    """CreateStack, CreateChangeSet and UpdateStack of a template with IAM resources need
    CAPABILITY_IAM (CAPABILITY_NAMED_IAM when they have custom names) in `Capabilities`,
    as on AWS, so a deploy that would be refused there is refused here first."""
    from moto.cloudformation.responses import CloudFormationResponse

    for action in ("create_stack", "create_change_set", "update_stack"):
        original = getattr(CloudFormationResponse, action)

        def method(response, _original=original):
            _check_capabilities(response)
            return _original(response)

        method.__wrapped__ = original
        setattr(CloudFormationResponse, action, method)


def _check_capabilities(response) -> None:
    from moto.cloudformation.exceptions import CloudFormationError, ValidationError

    body = response._get_param("TemplateBody")
    if not body:
        return  # a URL or the previous template: read again by the action itself
    try:
        document = parse(body)
    except ValidationError:
        return  # the action refuses it with its own words
    needed, _ = required_capabilities(document, _nested_templates(response, document))
    given = set(response._get_param("Capabilities") or [])
    if needed and not (
        set(needed) & given or ("CAPABILITY_IAM" in needed and "CAPABILITY_NAMED_IAM" in given)
    ):
        raise CloudFormationError(
            "InsufficientCapabilitiesException", f"Requires capabilities : [{needed[0]}]"
        )


def _nested_templates(response, document: dict) -> list[dict]:
    """The templates of the nested stacks whose TemplateURL is a literal, nested ones included."""
    from moto.cloudformation.exceptions import ValidationError

    found, queue = [], [document]
    while queue and len(found) < 100:
        for resource in (queue.pop().get("Resources") or {}).values():
            url = (
                (resource.get("Properties") or {}).get("TemplateURL") if isinstance(resource, dict) else None
            )
            if resource.get("Type") != "AWS::CloudFormation::Stack" or not isinstance(url, str):
                continue
            try:
                child = parse(response._get_stack_from_s3_url(url))
            except ValidationError:
                continue  # creating the nested stack reports it
            found.append(child)
            queue.append(child)
    return found


def validate_templates_as_aws() -> None:
    """ValidateTemplate answers with what the template declares (Parameters, Description,
    Capabilities and their reason, DeclaredTransforms), or ValidationError for what
    CloudFormation itself refuses; lint findings are not errors on AWS."""
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    original = CloudFormationResponse.validate_template

    def validate_template(response):
        body = response._get_param("TemplateBody")
        url = response._get_param("TemplateURL")
        if url and not body:
            body = response._get_stack_from_s3_url(url)
        document = template_problem(body or "", response.region)
        parameters = [
            {
                "ParameterKey": name,
                "DefaultValue": None if spec.get("Default") is None else str(spec.get("Default")),
                "NoEcho": bool(spec.get("NoEcho", False)),
                "Description": spec.get("Description"),
            }
            for name, spec in (document.get("Parameters") or {}).items()
        ]
        capabilities, reason = required_capabilities(document)
        transforms = document.get("Transform") or []
        result = {
            "Parameters": [{k: v for k, v in p.items() if v is not None} for p in parameters],
            "Description": document.get("Description"),
            "Capabilities": capabilities,
            "CapabilitiesReason": reason or None,
            "DeclaredTransforms": [transforms] if isinstance(transforms, str) else list(transforms),
        }
        return ActionResult({k: v for k, v in result.items() if v is not None})

    validate_template.__wrapped__ = original
    CloudFormationResponse.validate_template = validate_template
