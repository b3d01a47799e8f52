terraform {
  # Same floor as terraform/modules; optional() attributes and precondition
  # blocks are used here too.
  required_version = ">= 1.5.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # The version terraform/modules pin: one provider schema for all of
      # Roastery's Terraform. Bump both together.
      version = "4.14.0"
    }
    azuread = {
      source  = "hashicorp/azuread"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }

  # Partial configuration: `terraform init -backend-config=<env>.backend.hcl`
  # (deploy/README.md). The state holds secrets: keep it in a private,
  # versioned container that only the platform team can read.
  backend "azurerm" {}
}

provider "azurerm" {
  subscription_id = var.subscription_id
  # Key Vault soft delete stays in force; a destroyed vault is recoverable.
  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
    resource_group {
      prevent_deletion_if_contains_resources = true
    }
  }
  storage_use_azuread = true
}

provider "azuread" {
  tenant_id = var.tenant_id
}
