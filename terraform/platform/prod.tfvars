# terraform -chdir=terraform/platform plan -var-file=prod.tfvars
# Secrets are not here: export TF_VAR_postgres_admin_password first.
environment        = "prod"
subscription_id    = "88888888-8888-8888-8888-888888888888"
tenant_id          = "11111111-1111-1111-1111-111111111111"
location           = "eastus"
name_suffix        = "gj01"
address_space      = "10.50.0.0/16"
kubernetes_version = "1.30"
aks_sku_tier       = "Standard"
system_pool = {
  vm_size   = "Standard_D4ds_v5"
  min_count = 3
  max_count = 5
}
user_pool = {
  vm_size   = "Standard_D4ds_v5"
  min_count = 3
  max_count = 12
}
zones                          = ["1", "2", "3"]
admin_group_object_ids         = ["00000000-0000-0000-0000-000000000000"]
operator_ip_ranges             = []
postgres_sku                   = "GP_Standard_D4ds_v5"
postgres_storage_mb            = 131072
postgres_ha                    = true
postgres_backup_retention_days = 35
postgres_geo_redundant_backup  = true
storage_replication            = "GZRS"
blob_soft_delete_days          = 30
acr_sku                        = "Premium"
key_vault_purge_protection     = true
log_retention_days             = 90
namespace                      = "roastery"
portal_hostname                = "roastery.globojava.example"
