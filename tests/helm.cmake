# Renders helm/dsinfer with real Helm (helm-python-sdk) and validates the manifests offline
# (tools/check_helm.py). Skipped (77) without pyyaml, kubernetes-validate and helm-python-sdk:
# scripts/install-deps.sh --helm installs them.
add_test(NAME helm_chart_check
  COMMAND bash ${PROJECT_SOURCE_DIR}/tools/check_helm.sh ${PROJECT_BINARY_DIR})
set_tests_properties(helm_chart_check PROPERTIES
  LABELS "helm;cpu" SKIP_RETURN_CODE 77 TIMEOUT 120)
