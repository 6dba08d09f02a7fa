//! Hand-written statements that each connection prepares once.
//!
//! `diesel::sql_query` is never put in a connection's statement cache
//! (diesel cannot know its text is fixed), so every call of one costs a Parse
//! round trip before the Bind/Execute one. A statement written as a type of
//! its own (`impl Statement`) and run as `Prepared(statement)` has a static
//! query id, which is the key of diesel-async's per-connection cache: the
//! first call on a connection prepares it, later calls only bind and execute.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Untyped;
use diesel::QueryResult;

/// A fixed SQL text with numbered parameters `$1`, `$2`, ...; `$` appears in
/// it only as a parameter marker. Rows load into `QueryableByName` structs.
pub trait Statement: Send + Sync + 'static {
    const SQL: &'static str;

    /// Pushes the value of parameter `$n` (1-based) with
    /// `out.push_bind_param`; called once per occurrence of `$n`.
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// Runs a `Statement` through the connection's statement cache.
#[derive(Debug, Clone)]
pub struct Prepared<S>(pub S);

impl<S: Statement> QueryId for Prepared<S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Statement> Query for Prepared<S> {
    type SqlType = Untyped;
}

impl<S: Statement> QueryFragment<Pg> for Prepared<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Diesel numbers the binds itself in the order they are pushed, so
        // each `$n` of the text becomes one pushed bind (a parameter used
        // twice is bound twice).
        let mut rest = S::SQL;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let n = after[..digits].parse::<usize>().map_err(|_| {
                diesel::result::Error::QueryBuilderError(
                    format!(
                        "`$` without a parameter number in {}",
                        std::any::type_name::<S>()
                    )
                    .into(),
                )
            })?;
            self.0.bind(n, &mut out)?;
            rest = &after[digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// A bind for a parameter number the statement does not have.
pub fn no_such_parameter<S>(n: usize) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        format!("{} has no parameter ${n}", std::any::type_name::<S>()).into(),
    )
}
