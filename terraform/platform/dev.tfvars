# terraform -chdir=terraform/platform plan -var-file=dev.tfvars
# Secrets are not here: export TF_VAR_postgres_admin_password first.
environment        = "dev"
subscription_id    = "33333333-3333-3333-3333-333333333333"
tenant_id          = "11111111-1111-1111-1111-111111111111"
location           = "eastus"
name_suffix        = "gj01"
address_space      = "10.40.0.0/16"
kubernetes_version = "1.30"
aks_sku_tier       = "Free"
system_pool = {
  vm_size   = "Standard_D2ds_v5"
  min_count = 1
  max_count = 2
}
user_pool = {
  vm_size   = "Standard_D4ds_v5"
  min_count = 1
  max_count = 3
}
zones                          = []
admin_group_object_ids         = ["00000000-0000-0000-0000-000000000000"]
operator_ip_ranges             = []
postgres_sku                   = "B_Standard_B2s"
postgres_ha                    = false
postgres_backup_retention_days = 7
storage_replication            = "LRS"
blob_soft_delete_days          = 7
acr_sku                        = "Standard"
key_vault_purge_protection     = false
log_retention_days             = 30
namespace                      = "roastery-dev"
portal_hostname                = "roastery.dev.globojava.example"
