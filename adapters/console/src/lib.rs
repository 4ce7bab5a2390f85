//! The terminal adapter: `kindred chat`.
//!
//! One message per line on stdin; the bot's messages on stdout. Prompts (ratings, the
//! check-in and the survey) appear as numbered choices, and a bare number answers the
//! pending one. The next line is read only when the engine reports it is done with the
//! previous one, so piped scripts behave exactly like a person typing.
#![forbid(unsafe_code)]

use kindred_adapter::{Adapter, AdapterIo, ChatRef, Choice, Inbound, Outbound, UserRef};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

pub const PLATFORM: &str = "console";

/// A console session for one local user.
pub struct ConsoleAdapter<R, W> {
    user: String,
    input: R,
    output: W,
}

impl ConsoleAdapter<tokio::io::Stdin, tokio::io::Stdout> {
    pub fn stdio(user: impl Into<String>) -> Self {
        Self::new(user, tokio::io::stdin(), tokio::io::stdout())
    }
}

impl<R, W> ConsoleAdapter<R, W> {
    pub fn new(user: impl Into<String>, input: R, output: W) -> Self {
        Self {
            user: user.into(),
            input,
            output,
        }
    }
}

fn parse_line(line: &str, chat: &ChatRef, user: &UserRef, pending: &[Choice]) -> Option<Inbound> {
    let text = line.trim_end_matches(['\r', '\n']);
    if let Ok(n) = text.trim().parse::<usize>() {
        if n >= 1 && n <= pending.len() {
            return Some(Inbound::Choice {
                chat: chat.clone(),
                user: user.clone(),
                payload: pending[n - 1].payload.clone(),
                interaction: None,
            });
        }
    }
    if let Some(rest) = text.trim_start().strip_prefix('/') {
        let mut parts = rest.splitn(2, char::is_whitespace);
        let name = parts.next().unwrap_or_default().to_lowercase();
        if !name.is_empty() {
            return Some(Inbound::Command {
                chat: chat.clone(),
                user: user.clone(),
                message_id: None,
                name,
                args: parts.next().unwrap_or_default().trim().to_string(),
                interaction: None,
            });
        }
    }
    Some(Inbound::Message {
        chat: chat.clone(),
        user: user.clone(),
        message_id: None,
        text: text.to_string(),
    })
}

impl<R, W> Adapter for ConsoleAdapter<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn run(self, mut io: AdapterIo) -> anyhow::Result<()> {
        let chat = ChatRef::direct(PLATFORM, self.user.clone());
        let user = UserRef {
            platform: PLATFORM.into(),
            id: self.user.clone(),
            display_name: Some(self.user.clone()),
        };
        // A terminal is always there.
        io.connection.up();
        let mut lines = BufReader::new(self.input).lines();
        let mut out = self.output;
        let mut pending: Vec<Choice> = Vec::new();
        let mut sent = 0u64;
        // Start by greeting, as a platform's "start" button would.
        let mut waiting = true;
        io.inbound
            .send(Inbound::Command {
                chat: chat.clone(),
                user: user.clone(),
                message_id: None,
                name: "start".into(),
                args: String::new(),
                interaction: None,
            })
            .await?;
        loop {
            if waiting {
                tokio::select! {
                    _ = io.shutdown.recv() => return Ok(()),
                    msg = io.outbound.recv() => {
                        let Some(msg) = msg else { return Ok(()) };
                        match msg {
                            Outbound::Text { id, text, .. } => {
                                out.write_all(format!("{text}\n").as_bytes()).await?;
                                sent += 1;
                                if let Some(id) = id {
                                    let _ = io.inbound.send(Inbound::Delivered { outbound_id: id, platform_message_id: Some(format!("console-{sent}")) }).await;
                                }
                            }
                            Outbound::Prompt { id, text, choices, .. } => {
                                let mut s = format!("{text}\n");
                                for (i, c) in choices.iter().enumerate() {
                                    s.push_str(&format!("  [{}] {}\n", i + 1, c.label));
                                }
                                out.write_all(s.as_bytes()).await?;
                                pending = choices;
                                sent += 1;
                                if let Some(id) = id {
                                    let _ = io.inbound.send(Inbound::Delivered { outbound_id: id, platform_message_id: Some(format!("console-{sent}")) }).await;
                                }
                            }
                            Outbound::File { id, file_name, content, caption, .. } => {
                                out.write_all(format!("{caption}\n--- {file_name} ---\n{content}\n--- end of {file_name} ---\n").as_bytes()).await?;
                                sent += 1;
                                if let Some(id) = id {
                                    let _ = io.inbound.send(Inbound::Delivered { outbound_id: id, platform_message_id: Some(format!("console-{sent}")) }).await;
                                }
                            }
                            Outbound::Notice { text, .. } => {
                                out.write_all(format!("{text}\n").as_bytes()).await?;
                            }
                            // The prompt has scrolled by in a terminal; the notice that
                            // accompanies every edit says the same.
                            Outbound::EditPrompt { .. } | Outbound::Typing { .. } => {}
                            Outbound::Done { .. } => waiting = false,
                        }
                        out.flush().await?;
                    }
                }
            } else {
                tokio::select! {
                    _ = io.shutdown.recv() => return Ok(()),
                    line = lines.next_line() => {
                        let Some(line) = line? else { return Ok(()) };
                        if let Some(ev) = parse_line(&line, &chat, &user, &pending) {
                            if matches!(ev, Inbound::Choice { .. }) {
                                pending.clear();
                            }
                            io.inbound.send(ev).await?;
                            waiting = true;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_commands_choices_or_messages() {
        let chat = ChatRef::direct("console", "u");
        let user = UserRef {
            platform: "console".into(),
            id: "u".into(),
            display_name: None,
        };
        let pending = vec![Choice {
            label: "1 ★".into(),
            payload: "p1".into(),
        }];
        assert!(
            matches!(parse_line("/Rate 4", &chat, &user, &[]), Some(Inbound::Command { name, args, .. }) if name == "rate" && args == "4")
        );
        assert!(
            matches!(parse_line("1", &chat, &user, &pending), Some(Inbound::Choice { payload, .. }) if payload == "p1")
        );
        // A number with no pending choice (or out of range) is just text.
        assert!(
            matches!(parse_line("7", &chat, &user, &pending), Some(Inbound::Message { text, .. }) if text == "7")
        );
        assert!(matches!(
            parse_line("hello", &chat, &user, &[]),
            Some(Inbound::Message { .. })
        ));
    }
}
