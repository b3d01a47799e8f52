terraform {
  # precondition blocks need >= 1.2 and nullable needs >= 1.1; the project
  # standardises on >= 1.5.0 for all of its Terraform code.
  required_version = ">= 1.5.0"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # Exact pin: every argument name in this module was checked against
      # the 4.14.0 schema. Bump deliberately, re-checking the schema.
      version = "4.14.0"
    }
  }
}
