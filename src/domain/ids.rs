//! Identifiers as newtypes, so an environment id is never passed where a domain id belongs.

id_type!(
    /// A tenant.
    EnvironmentId,
    new_v4
);
id_type!(
    /// A worker application that obtains tokens.
    ClientId,
    new_v4
);
id_type!(
    /// A trusted email domain.
    DomainId,
    new_v4
);
id_type!(
    /// A trusted email address of a domain.
    TrustedEmailId,
    new_v4
);
id_type!(
    /// A population of an environment.
    PopulationId,
    new_v4
);
id_type!(
    /// An audit activity; v7 so ids sort by creation time.
    ActivityId,
    now_v7
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_hyphenated_lowercase_output() {
        let id: DomainId = "0A061690-6D28-42EA-9B4C-4A9DA6E85909".parse().unwrap();
        assert_eq!(id.to_string(), "0a061690-6d28-42ea-9b4c-4a9da6e85909");
        assert!(
            "0a0616906d2842ea9b4c4a9da6e85909"
                .parse::<DomainId>()
                .is_err()
        );
        assert!("not-a-uuid".parse::<DomainId>().is_err());
    }
}
