# The app registration the server validates tokens for (ROASTERY_AAD_AUDIENCE)
# and a service principal for the executor's ARM calls.

resource "random_uuid" "role_platform_admin" {}
resource "random_uuid" "role_data_scientist" {}
resource "random_uuid" "role_store_manager" {}
resource "random_uuid" "scope_access_as_user" {}

locals {
  api_identifier_uri = "api://roastery-${var.environment}"
  # The server maps roles by value; these are its names (README, "Identity
  # and access"), so ROASTERY_AAD_ROLE_MAP stays unset.
  app_roles = {
    PlatformAdmin = { id = random_uuid.role_platform_admin.result, display = "Platform admin", description = "Approves compute over quota and production promotions, sets quotas and budgets, reads the audit log." }
    DataScientist = { id = random_uuid.role_data_scientist.result, display = "Data scientist", description = "Registers datasets, requests compute, starts runs and proposes promotions." }
    StoreManager  = { id = random_uuid.role_store_manager.result, display = "Store manager", description = "Reads forecasts, actuals and accuracy of the stores assigned to them." }
  }
}

resource "azuread_application" "api" {
  display_name     = "Roastery (${var.environment})"
  identifier_uris  = [local.api_identifier_uri]
  sign_in_audience = "AzureADMyOrg"
  # Notebooks sign in with the device code flow as a public client.
  fallback_public_client_enabled = true

  api {
    # v2 tokens: iss https://login.microsoftonline.com/{tid}/v2.0, aud = client id.
    requested_access_token_version = 2

    oauth2_permission_scope {
      id                         = random_uuid.scope_access_as_user.result
      value                      = "access_as_user"
      type                       = "User"
      enabled                    = true
      admin_consent_display_name = "Use Roastery as the signed-in user"
      admin_consent_description  = "Lets the portal and notebooks call the Roastery API on behalf of the signed-in user."
      user_consent_display_name  = "Use Roastery as you"
      user_consent_description   = "Lets the portal and notebooks call the Roastery API on your behalf."
    }
  }

  dynamic "app_role" {
    for_each = local.app_roles
    content {
      id                   = app_role.value.id
      value                = app_role.key
      display_name         = app_role.value.display
      description          = app_role.value.description
      allowed_member_types = ["User"]
      enabled              = true
    }
  }

  # The portal is a single-page app on the ingress host.
  single_page_application {
    redirect_uris = ["https://${var.portal_hostname}/"]
  }

  public_client {
    redirect_uris = ["http://localhost"]
  }
}

# Only users (or groups) given an app role get a token at all.
resource "azuread_service_principal" "api" {
  client_id                    = azuread_application.api.client_id
  app_role_assignment_required = true
}

# The executor app registration, only with server_credential = "client_secret":
# the server's ARM client then signs in with ROASTERY_AZURE_CLIENT_ID / _SECRET.
# By default (workload_identity) the pods' managed identities are used instead.
locals {
  executor_count = var.server_credential == "client_secret" ? 1 : 0
}

resource "azuread_application" "executor" {
  count            = local.executor_count
  display_name     = "Roastery executor (${var.environment})"
  sign_in_audience = "AzureADMyOrg"
}

resource "azuread_service_principal" "executor" {
  count     = local.executor_count
  client_id = azuread_application.executor[0].client_id
}

resource "time_rotating" "executor_secret" {
  count         = local.executor_count
  rotation_days = var.executor_credential_rotation_days
}

resource "azuread_application_password" "executor" {
  count          = local.executor_count
  application_id = azuread_application.executor[0].id
  display_name   = "roastery-${var.environment}-${time_rotating.executor_secret[0].id}"
  # Expires 30 days after the planned rotation, so a late terraform run does
  # not break the executor. A rotation replaces the secret (the old one is
  # deleted): restart the workers afterwards (docs/operations.md).
  end_date = timeadd(time_rotating.executor_secret[0].rotation_rfc3339, "720h")
  rotate_when_changed = {
    rotation = time_rotating.executor_secret[0].id
  }
  lifecycle {
    create_before_destroy = true
  }
}
