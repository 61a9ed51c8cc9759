//! Tenancy vocabulary: geographies, roles, permissions and audit names.

wire_enum!(
    /// Where an environment was provisioned; picks the sending regions of its domains.
    Geography { Na => "NA", Ca => "CA", Eu => "EU", Ap => "AP" }
);

wire_enum!(
    /// PingOne's environment types: PRODUCTION marks an environment to protect from deletion.
    EnvironmentType { Sandbox => "SANDBOX", Production => "PRODUCTION" }
);

wire_enum!(
    /// What a client may do.
    Role {
        OrganizationAdmin => "ORGANIZATION_ADMIN",
        EnvironmentAdmin => "ENVIRONMENT_ADMIN",
        ReadOnly => "READ_ONLY",
    }
);

wire_enum!(
    /// The kind of resource an activity is about.
    ResourceType {
        Environment => "ENVIRONMENT",
        EmailDomain => "EMAIL_DOMAIN",
        TrustedEmail => "TRUSTED_EMAIL",
        Client => "CLIENT",
        Subscription => "SUBSCRIPTION",
        Population => "POPULATION",
        Suppression => "SUPPRESSION",
        Message => "MESSAGE",
    }
);

wire_enum!(
    /// Audit activity types.
    ActivityType {
        EnvironmentCreated => "ENVIRONMENT_CREATED",
        EnvironmentDeleted => "ENVIRONMENT_DELETED",
        EnvironmentUpdated => "ENVIRONMENT_UPDATED",
        EmailDomainCreated => "EMAIL_DOMAIN_CREATED",
        EmailDomainDeleted => "EMAIL_DOMAIN_DELETED",
        EmailDomainStatusUpdated => "EMAIL_DOMAIN_STATUS_UPDATED",
        TrustedEmailCreated => "TRUSTED_EMAIL_CREATED",
        TrustedEmailDeleted => "TRUSTED_EMAIL_DELETED",
        TrustedEmailSendCode => "TRUSTED_EMAIL_SEND_CODE",
        TrustedEmailActive => "TRUSTED_EMAIL_ACTIVE",
        DkimKeyRotated => "DKIM_KEY_ROTATED",
        ClientCreated => "CLIENT_CREATED",
        ClientDeleted => "CLIENT_DELETED",
        ClientSecretRotated => "CLIENT_SECRET_ROTATED",
        SubscriptionCreated => "SUBSCRIPTION_CREATED",
        SubscriptionUpdated => "SUBSCRIPTION_UPDATED",
        SubscriptionDeleted => "SUBSCRIPTION_DELETED",
        SubscriptionSecretRotated => "SUBSCRIPTION_SECRET_ROTATED",
        PopulationCreated => "POPULATION_CREATED",
        PopulationUpdated => "POPULATION_UPDATED",
        PopulationDeleted => "POPULATION_DELETED",
        SuppressionCreated => "SUPPRESSION.CREATED",
        SuppressionDeleted => "SUPPRESSION.DELETED",
        EmailBounced => "EMAIL.BOUNCED",
        EmailComplained => "EMAIL.COMPLAINED",
    }
);

/// Access tokens live an hour, as PingOne's do.
pub const TOKEN_LIFETIME_S: i64 = 3600;

/// The one permission a handler asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read resources of one environment.
    Read,
    /// Create or delete resources inside one environment.
    Write,
    /// Create or delete environments themselves.
    ManageEnvironments,
}

impl Role {
    /// Whether this role grants `permission` inside its own environment.
    pub fn grants(&self, permission: Permission) -> bool {
        match self {
            Role::OrganizationAdmin => true,
            Role::EnvironmentAdmin => permission != Permission::ManageEnvironments,
            Role::ReadOnly => permission == Permission::Read,
        }
    }

    /// Whether the role reaches beyond the environment its client lives in.
    pub fn spans_environments(&self) -> bool {
        matches!(self, Role::OrganizationAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_design_says() {
        assert!(Role::OrganizationAdmin.grants(Permission::ManageEnvironments));
        assert!(Role::EnvironmentAdmin.grants(Permission::Write));
        assert!(!Role::EnvironmentAdmin.grants(Permission::ManageEnvironments));
        assert!(Role::ReadOnly.grants(Permission::Read));
        assert!(!Role::ReadOnly.grants(Permission::Write));
    }

    #[test]
    fn wire_names_round_trip() {
        for g in Geography::ALL {
            assert_eq!(g.as_str().parse::<Geography>().unwrap(), *g);
        }
        let err = "na".parse::<Geography>().unwrap_err();
        assert_eq!(err.allowed.trim(), "NA CA EU AP");
    }
}
