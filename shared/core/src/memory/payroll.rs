//! Payroll runs, schedules and the chunk queue, in memory. Counting a chunk is all-or-nothing and once per
//! chunk, as the DynamoDB transaction is.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::guard::lock;
use crate::payroll::job::{ChunkMessage, RunRecord, RunStatus, Totals};
use crate::payroll::schedule::{PayrollSchedule, ScheduleState, TickOutcome};
use crate::ports::{ChunkQueue, PayrollRuns, PayrollSchedules, StoreError};

/// Each run by (organisation, run id), with the chunks counted so far.
type Runs = HashMap<(String, String), (RunRecord, BTreeSet<u32>)>;

#[derive(Default)]
pub struct MemoryPayrollRuns {
    runs: Mutex<Runs>,
}

fn key(organization_id: &str, run_id: &str) -> (String, String) {
    (organization_id.to_string(), run_id.to_string())
}

#[async_trait]
impl PayrollRuns for MemoryPayrollRuns {
    async fn create_run(&self, run: &RunRecord) -> Result<bool, StoreError> {
        let mut runs = lock(&self.runs);
        let k = key(&run.request.organization_id, &run.request.payroll_run_id);
        if runs.contains_key(&k) {
            return Ok(false);
        }
        runs.insert(k, (run.clone(), BTreeSet::new()));
        Ok(true)
    }

    async fn get_run(&self, organization_id: &str, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(lock(&self.runs).get(&key(organization_id, run_id)).map(|(r, _)| r.clone()))
    }

    async fn count_chunk(&self, organization_id: &str, run_id: &str, chunk: u32, employees: u32) -> Result<(bool, RunRecord), StoreError> {
        let mut runs = lock(&self.runs);
        let Some((run, counted)) = runs.get_mut(&key(organization_id, run_id)) else {
            return Err(StoreError::new("count_chunk", "no such run"));
        };
        let fresh = chunk <= run.chunks_total && counted.insert(chunk);
        if fresh {
            run.chunks_done += 1;
            run.employees_done += employees;
        }
        Ok((fresh, run.clone()))
    }

    async fn complete_run(&self, organization_id: &str, run_id: &str, totals: &Totals, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut runs = lock(&self.runs);
        match runs.get_mut(&key(organization_id, run_id)) {
            Some((run, _)) if run.status == RunStatus::Running => {
                run.status = RunStatus::Completed;
                run.totals = Some(totals.clone());
                run.completed_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_announced(&self, organization_id: &str, run_id: &str) -> Result<(), StoreError> {
        if let Some((run, _)) = lock(&self.runs).get_mut(&key(organization_id, run_id)) {
            run.announced = true;
        }
        Ok(())
    }

    async fn list_runs(
        &self,
        organization_id: Option<&str>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<RunRecord>, Option<String>), StoreError> {
        let mut all: Vec<RunRecord> = lock(&self.runs)
            .values()
            .map(|(r, _)| r.clone())
            .filter(|r| organization_id.is_none_or(|o| r.request.organization_id == o))
            .filter(|r| cursor.is_none_or(|c| r.listing_key().as_str() < c))
            .collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.listing_key()));
        let more = all.len() > limit as usize;
        all.truncate(limit as usize);
        let next = if more { all.last().map(RunRecord::listing_key) } else { None };
        Ok((all, next))
    }
}

/// Schedules by organisation, with what their ticks did.
#[derive(Default)]
pub struct MemoryPayrollSchedules {
    pub schedules: Mutex<BTreeMap<String, ScheduleState>>,
}

#[async_trait]
impl PayrollSchedules for MemoryPayrollSchedules {
    async fn put_schedule(&self, schedule: &PayrollSchedule) -> Result<(), StoreError> {
        let mut all = lock(&self.schedules);
        let state = all.entry(schedule.organization_id.clone()).or_insert_with(|| ScheduleState {
            schedule: schedule.clone(),
            last_tick: None,
            last_settled: None,
        });
        state.schedule = schedule.clone();
        Ok(())
    }

    async fn delete_schedule(&self, organization_id: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.schedules).remove(organization_id).is_some())
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleState>, StoreError> {
        Ok(lock(&self.schedules).values().cloned().collect())
    }

    async fn note_tick(&self, organization_id: &str, tick: &TickOutcome) -> Result<(), StoreError> {
        if let Some(state) = lock(&self.schedules).get_mut(organization_id) {
            state.last_tick = Some(tick.clone());
            if tick.settles() {
                state.last_settled = Some(tick.period.clone());
            }
        }
        Ok(())
    }
}

/// Chunk messages, in the order sent; a test hands them to the worker (and again, to redeliver).
#[derive(Default)]
pub struct MemoryChunkQueue {
    pub sent: Mutex<Vec<ChunkMessage>>,
}

impl MemoryChunkQueue {
    pub fn take(&self) -> Vec<ChunkMessage> {
        std::mem::take(&mut *lock(&self.sent))
    }
}

#[async_trait]
impl ChunkQueue for MemoryChunkQueue {
    async fn send_chunks(&self, chunks: &[ChunkMessage]) -> Result<(), StoreError> {
        lock(&self.sent).extend_from_slice(chunks);
        Ok(())
    }
}
