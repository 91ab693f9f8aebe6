"""Fixes of the ASL interpreter both engines run (moto's copy and LocalStack's own), each
applied to the engine named ("moto" or "localstack"): by the moto list in
harness.emulator.patches for the default engine, by the LocalStack list inside LocalStack.

Imports only jsonata and the engine's modules: it also loads inside LocalStack's Python.
"""

from __future__ import annotations

from harness.emulator import asl_engines


def evaluate_jsonata_in_python(engine: str) -> None:
    """moto's JSONata evaluator is a stub, and LocalStack's runs in a JVM it downloads at first
    use (which fails offline); jsonata-python evaluates the same language in-process."""
    import jsonata

    asl_jsonata = asl_engines.engine_modules(engine).jsonata

    def _eval(expression: str):
        try:
            return jsonata.Jsonata(expression).evaluate(None)
        except jsonata.JException as ex:
            raise asl_jsonata.JSONataException(ex.error or "UNKNOWN", str(ex)) from ex

    asl_jsonata._eval_jsonata = _eval


def name_aws_sdk_errors_as_aws(engine: str) -> None:
    """AWS names an aws-sdk Task's errors `<Service>.<Name>Exception` with the service in
    PascalCase (S3.NoSuchKeyException); the engines' table knows DynamoDb and Sfn only, so an
    S3 error came out as `s3.NoSuchKeyException` and a Catch written for AWS missed it."""
    table = asl_engines.engine_modules(engine).aws_sdk._SERVICE_ERROR_NAMES
    for service, name in asl_engines.AWS_SDK_ERROR_SERVICE_NAMES.items():
        table.setdefault(service, name)


def call_aws_sdk_services_by_their_boto_names(engine: str) -> None:
    """`arn:aws:states:::aws-sdk:sagemakerruntime:invokeEndpoint` names the service as AWS's SDK
    integrations do; boto3 calls it sagemaker-runtime, so the engines asked for a client of a
    service that does not exist."""
    table = asl_engines.engine_modules(
        engine
    ).state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES
    for service, boto_name in asl_engines.AWS_SDK_BOTO_SERVICE_NAMES.items():
        table.setdefault(service, boto_name)


def pass_strings_to_blobs_as_they_are(engine: str) -> None:
    """A string given to a blob parameter (InvokeEndpoint's Body from an aws-sdk Task) reaches
    the service as its bytes, as on AWS; LocalStack's engine JSON-encoded it first, so a CSV body
    arrived quoted. (moto's copy does not normalise aws-sdk parameters at all.)"""
    service = asl_engines.engine_modules(engine).state_task_service.StateTaskService
    upstream = service._to_boto_request_value
    if getattr(upstream, "passes_strings", False):
        return

    def _to_boto_request_value(self, request_value, value_shape):
        if value_shape.type_name == "blob" and isinstance(request_value, str):
            return request_value.encode()
        return upstream(self, request_value, value_shape)

    _to_boto_request_value.passes_strings = True
    service._to_boto_request_value = _to_boto_request_value


def add_sagemaker_task_integration(engine: str) -> None:
    """Both engines list "sagemaker" as an unsupported Task integration; supply ours
    (harness.emulator.sfn_sagemaker)."""
    from harness.emulator.sfn_sagemaker import integration_class

    m = asl_engines.engine_modules(engine)
    integration = integration_class(engine)
    m.factory._UNSUPPORTED_SERVICE_NAMES.discard("sagemaker")
    upstream = m.factory.state_task_service_for
    if getattr(upstream, "sagemaker_integration", None) is integration:
        return  # already registered

    def state_task_service_for(service_name: str):
        if service_name == "sagemaker":
            return integration()
        return upstream(service_name)

    state_task_service_for.sagemaker_integration = integration
    m.factory.state_task_service_for = state_task_service_for
    # state_task_factory imported the function by value.
    m.state_task_factory.state_task_service_for = state_task_service_for


def keep_task_timeouts_on_the_stack_after_a_stop(engine: str) -> None:
    """A component of a stopped execution skips its evaluation, but a Task pops its
    TimeoutSeconds and HeartbeatSeconds off the stack regardless: stopped between its service
    call and those pops, a `.sync` Task took the state's input for its timeout and its callback
    thread died with a TypeError. A stopped Task waits on nothing, so the default stands in."""
    m = asl_engines.engine_modules(engine)
    default_seconds = m.timeout.TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
    for component in (m.timeout.Timeout, m.heartbeat.Heartbeat):
        if getattr(component.eval, "__wrapped__", None) is not None:
            continue  # already applied

        def eval(self, env, _original=component.eval):
            if env.is_running():
                _original(self, env)
            else:
                env.stack.append(default_seconds)

        eval.__wrapped__ = component.eval
        component.eval = eval


def evaluate_role_arn_path_keys(engine: str) -> None:
    """`"RoleArn.$"` is a token of its own in the ASL grammar (for a Task's Credentials), so in
    Parameters, ItemSelector, ResultSelector or Assign the key matched the literal-value rule
    and `{"RoleArn.$": "$.role"}` passed the path on as a string: every job of the Data Science
    SDK's pipeline templates got no role. AWS evaluates it as any other `.$` key."""
    m = asl_engines.engine_modules(engine)
    preprocessor = m.preprocessor.Preprocessor
    if getattr(preprocessor.visitPayload_binding_value, "__wrapped__", None) is not None:
        return  # already applied
    # the key's text, which the lexer always makes that token (under a soft-keyword rule)
    role_arn_path = m.preprocessor.ASLLexer.literalNames[m.preprocessor.ASLLexer.ROLEARNPATH][1:-1]

    def is_role_arn_path(key_context) -> bool:
        return key_context.getText() == role_arn_path

    def string_expression(self, value_context):
        """The value parsed as the right-hand side of a `.$` key (a path, a context or variable
        path, or an intrinsic function), refused as the definition's parse would refuse it."""
        import antlr4

        errors = m.asl_parser.SyntaxErrorListener()
        parser = m.preprocessor.ASLParser(
            antlr4.CommonTokenStream(m.preprocessor.ASLLexer(antlr4.InputStream(value_context.getText())))
        )
        parser.removeErrorListeners()
        parser.addErrorListener(errors)
        tree = parser.string_expression_simple()
        if not errors.errors and parser.getCurrentToken().type != antlr4.Token.EOF:
            errors.errors.append(f"at {parser.getCurrentToken().text}, extraneous input")
        if errors.errors:
            raise m.asl_parser.ASLParserException(errors=errors.errors)
        return self.visitString_expression_simple(tree)

    upstream_payload = preprocessor.visitPayload_binding_value
    upstream_assign = preprocessor.visitAssign_template_binding_value

    def visitPayload_binding_value(self, ctx):
        if not is_role_arn_path(ctx.string_literal()):
            return upstream_payload(self, ctx)
        return m.preprocessor.PayloadBindingStringExpressionSimple(
            field="RoleArn", string_expression_simple=string_expression(self, ctx.payload_value_decl())
        )

    def visitAssign_template_binding_value(self, ctx):
        if not is_role_arn_path(ctx.string_literal()):
            return upstream_assign(self, ctx)
        return m.preprocessor.AssignTemplateBindingStringExpressionSimple(
            identifier="RoleArn",
            string_expression_simple=string_expression(self, ctx.assign_template_value()),
        )

    visitPayload_binding_value.__wrapped__ = upstream_payload
    visitAssign_template_binding_value.__wrapped__ = upstream_assign
    preprocessor.visitPayload_binding_value = visitPayload_binding_value
    preprocessor.visitAssign_template_binding_value = visitAssign_template_binding_value
