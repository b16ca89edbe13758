//! Agent names: `[A-Za-z0-9_.-]`, 1 to 64 characters (README, Redis layout).

use std::fmt;

/// The longest agent name accepted.
pub const MAX_AGENT_NAME_LEN: usize = 64;

/// A validated agent name, such as `pink` or `build-bot.2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentName(String);

/// Why a string is not an agent name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentNameError {
    /// The name is empty.
    #[error("agent name is empty")]
    Empty,
    /// The name is longer than [`MAX_AGENT_NAME_LEN`].
    #[error("agent name is {0} characters long; at most {MAX_AGENT_NAME_LEN} are allowed")]
    TooLong(usize),
    /// The name holds a character outside `[A-Za-z0-9_.-]`.
    #[error("agent name contains {0:?}; only letters, digits, '_', '.' and '-' are allowed")]
    BadChar(char),
}

impl AgentName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<Self, AgentNameError> {
        if name.is_empty() {
            return Err(AgentNameError::Empty);
        }
        if name.len() > MAX_AGENT_NAME_LEN {
            return Err(AgentNameError::TooLong(name.chars().count()));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(AgentNameError::BadChar(c));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AgentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_the_allowed_alphabet() {
        for name in ["pink", "harold", "build-bot.2", "A_b", &"x".repeat(64)] {
            assert_eq!(AgentName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refuses_bad_names_with_the_reason() {
        assert_eq!(AgentName::parse(""), Err(AgentNameError::Empty));
        assert_eq!(
            AgentName::parse(&"x".repeat(65)),
            Err(AgentNameError::TooLong(65))
        );
        assert_eq!(AgentName::parse("pi nk"), Err(AgentNameError::BadChar(' ')));
        assert_eq!(AgentName::parse("*"), Err(AgentNameError::BadChar('*')));
        assert_eq!(AgentName::parse("pïnk"), Err(AgentNameError::BadChar('ï')));
    }
}
