"""Patches to moto's CloudFormation, one function each, applied in order by `apply()`.

templates: how templates are read and what is refused up front; attributes:
Fn::GetAtt as AWS documents it; change_sets: change sets, updates and rollback;
nested_stacks: TemplateURLs, nested stacks and CreateStack's rollback; events: each
resource's events; names: generated names that survive a restart.
"""

from __future__ import annotations

from harness.emulator.patches.cloudformation import (
    attributes,
    change_sets,
    events,
    names,
    nested_stacks,
    templates,
)

# In application order: a later patch wraps an earlier one (create_stack is wrapped by
# nested_stacks, then change_sets, then templates, so a template is checked first).
PATCHES = (
    templates.leave_conditioned_out_resources_unlisted,
    templates.substitute_sub_variables_literally,
    templates.read_get_att_as_aws,
    templates.count_sub_variables_as_references,
    attributes.supply_missing_attributes,
    change_sets.name_failing_resources,
    events.report_resource_events,
    events.describe_resources_by_their_events,
    change_sets.diff_change_sets_with_parameters,
    change_sets.follow_conditions_in_updates,
    change_sets.execute_change_sets_with_rollback,
    change_sets.report_empty_change_sets_as_aws,
    change_sets.make_update_the_default_change_set_type,
    nested_stacks.read_template_urls_as_aws,
    nested_stacks.nest_stacks_as_aws,
    nested_stacks.roll_back_failed_creations,
    nested_stacks.create_nested_stacks_with_their_parent,
    change_sets.refuse_a_second_stack_of_one_name,
    names.name_generated_resources_from_a_seed,
    templates.refuse_templates_that_cannot_be_deployed,
    templates.require_capabilities,
    templates.validate_templates_as_aws,
)


def apply() -> None:
    for patch in PATCHES:
        patch()
