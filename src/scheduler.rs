//! The sync schedule: a cron expression with seconds, in UTC, run by tokio-cron-scheduler.

use std::future::Future;
use std::sync::Arc;

use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

/// Checks a cron expression with the scheduler's own parser. croner is asked first, with the
/// options tokio-cron-scheduler 0.13 sets, because the scheduler's error names no cause.
pub fn parse_schedule(expression: &str) -> Result<(), String> {
    let fields = expression.split_whitespace().count();
    if fields != 6 {
        return Err(format!("it has {fields} field(s), and six are needed"));
    }
    croner::Cron::new(expression)
        .with_seconds_required()
        .with_dom_and_dow()
        .parse()
        .map_err(|error| error.to_string())?;
    Job::new_async(expression, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|error| format!("the scheduler rejected it ({error:?})"))
}

/// A running schedule; `next_run` reports when it fires next.
pub struct Schedule {
    scheduler: JobScheduler,
    job: Uuid,
}

impl Schedule {
    /// Starts calling `fire` on every tick of `expression`.
    pub async fn start<F, Fut>(expression: &str, fire: F) -> Result<Schedule, String>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fire = Arc::new(fire);
        let job = Job::new_async(expression, move |_, _| {
            let fire = fire.clone();
            Box::pin(async move { fire().await })
        })
        .map_err(|error| format!("invalid schedule {expression:?}: {error:?}"))?;
        let scheduler = JobScheduler::new().await.map_err(|error| format!("cannot start the scheduler: {error:?}"))?;
        let job = scheduler.add(job).await.map_err(|error| format!("cannot add the sync job: {error:?}"))?;
        scheduler.start().await.map_err(|error| format!("cannot start the scheduler: {error:?}"))?;
        Ok(Schedule { scheduler, job })
    }

    /// The next run as RFC 3339 in UTC.
    pub async fn next_run(&self) -> Option<String> {
        let mut scheduler = self.scheduler.clone();
        let next = scheduler.next_tick_for_job(self.job).await.ok().flatten()?;
        let time = time::OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()?;
        time.format(&time::format_description::well_known::Rfc3339).ok()
    }

    pub async fn stop(mut self) {
        let _ = self.scheduler.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_needs_seconds_field() {
        assert!(parse_schedule("0 0 3 * * *").is_ok());
        assert!(parse_schedule("*/5 * * * * *").is_ok());
        assert!(parse_schedule("every day").is_err());
    }
}
