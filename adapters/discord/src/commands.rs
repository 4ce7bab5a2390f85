//! Slash commands, declared with poise. The user commands mirror the text commands;
//! `/kindred …` is for moderators, with the Manage Server permission required twice:
//! `default_member_permissions` hides it from others in Discord's menu, and
//! `required_permissions` checks the permissions Discord computed for the member
//! (sent with the interaction) before anything runs, so a hand-crafted call fails too.

use kindred_adapter::{Inbound, ModAction};
use poise::serenity_prelude as serenity;

use crate::convert::{chat_ref, interaction_handle, user_ref};
use crate::{Ctx, Data, Error};

pub fn all() -> Vec<poise::Command<Data, Error>> {
    vec![
        start(),
        end(),
        reset(),
        rate(),
        forget(),
        privacy(),
        mydata(),
        help(),
        kindred(),
    ]
}

/// Defers the interaction (ephemerally), then hands the command to the engine; the
/// engine's answers become follow-ups of this interaction.
async fn forward(
    ctx: Ctx<'_>,
    make: impl FnOnce(kindred_adapter::ChatRef, kindred_adapter::UserRef, Option<String>) -> Inbound,
) -> Result<(), Error> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    ctx.defer_ephemeral().await?;
    let chat = chat_ref(ctx.channel_id(), ctx.guild_id());
    let token = app.interaction.token.clone();
    ctx.data().deferred.insert(&token);
    let handle = interaction_handle(app.interaction.id, &token);
    let ev = make(chat, user_ref(ctx.author()), Some(handle));
    if !crate::deliver(
        &ctx.data().inbox,
        format!("interaction:{}", app.interaction.id),
        ev,
    )
    .await
    {
        ctx.data().deferred.remove(&token);
        ctx.say(crate::NOT_STORED).await?;
    }
    Ok(())
}

async fn command(ctx: Ctx<'_>, name: &str, args: String) -> Result<(), Error> {
    let name = name.to_string();
    forward(ctx, move |chat, user, interaction| Inbound::Command {
        chat,
        user,
        message_id: None,
        name,
        args,
        interaction,
    })
    .await
}

/// Begin a conversation with Kindred
#[poise::command(slash_command, user_cooldown = 2)]
async fn start(ctx: Ctx<'_>) -> Result<(), Error> {
    command(ctx, "start", String::new()).await
}

/// Finish the conversation (with a short, optional survey)
#[poise::command(slash_command, user_cooldown = 2)]
async fn end(ctx: Ctx<'_>) -> Result<(), Error> {
    command(ctx, "end", String::new()).await
}

/// Start fresh, leaving earlier messages aside
#[poise::command(slash_command, user_cooldown = 2)]
async fn reset(ctx: Ctx<'_>) -> Result<(), Error> {
    command(ctx, "reset", String::new()).await
}

/// Rate Kindred's last two replies
#[poise::command(slash_command, user_cooldown = 2)]
async fn rate(
    ctx: Ctx<'_>,
    #[description = "From 1 (not helpful) to 5 (very helpful)"]
    #[min = 1]
    #[max = 5]
    stars: u8,
) -> Result<(), Error> {
    command(ctx, "rate", stars.to_string()).await
}

/// Delete everything Kindred has stored about you
#[poise::command(slash_command, user_cooldown = 5)]
async fn forget(ctx: Ctx<'_>) -> Result<(), Error> {
    command(ctx, "forget", String::new()).await
}

/// Whether Kindred keeps your words after a conversation
#[poise::command(slash_command, user_cooldown = 2)]
async fn privacy(
    ctx: Ctx<'_>,
    #[description = "Keep my words after a conversation (leave out to see your choice)"]
    keep_my_words: Option<bool>,
) -> Result<(), Error> {
    let args = match keep_my_words {
        Some(true) => "on",
        Some(false) => "off",
        None => "",
    };
    command(ctx, "privacy", args.to_string()).await
}

/// Everything Kindred has stored about you, as a file
#[poise::command(slash_command, user_cooldown = 10)]
async fn mydata(ctx: Ctx<'_>) -> Result<(), Error> {
    command(ctx, "mydata", String::new()).await
}

/// What Kindred can do, and crisis resources
#[poise::command(slash_command)]
async fn help(ctx: Ctx<'_>) -> Result<(), Error> {
    command(ctx, "help", String::new()).await
}

/// Kindred in this server (moderators)
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_GUILD",
    required_permissions = "MANAGE_GUILD",
    subcommands("enable", "disable", "status", "resources", "alerts"),
    subcommand_required
)]
async fn kindred(_ctx: Ctx<'_>) -> Result<(), Error> {
    Ok(())
}

async fn moderate(ctx: Ctx<'_>, action: ModAction) -> Result<(), Error> {
    forward(ctx, move |chat, user, interaction| Inbound::Moderation {
        chat,
        user,
        action,
        interaction,
    })
    .await
}

/// Let Kindred answer in this channel when mentioned
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
async fn enable(ctx: Ctx<'_>) -> Result<(), Error> {
    moderate(ctx, ModAction::Enable).await
}

/// Stop Kindred answering in this channel
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
async fn disable(ctx: Ctx<'_>) -> Result<(), Error> {
    moderate(ctx, ModAction::Disable).await
}

/// Whether Kindred answers here, and the crisis resources it shows
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
async fn status(ctx: Ctx<'_>) -> Result<(), Error> {
    moderate(ctx, ModAction::Status).await
}

/// Set the crisis resources shown in this channel (leave empty for the default)
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
async fn resources(
    ctx: Ctx<'_>,
    #[description = "Phone numbers, links and opening hours of help in your region"] text: Option<
        String,
    >,
) -> Result<(), Error> {
    moderate(ctx, ModAction::SetResources(text.unwrap_or_default())).await
}

/// Send alerts about risk seen in this channel to a moderators' channel (leave empty to stop)
#[poise::command(slash_command, guild_only, required_permissions = "MANAGE_GUILD")]
async fn alerts(
    ctx: Ctx<'_>,
    #[description = "Where alerts go (a channel only moderators can read)"]
    #[channel_types("Text")]
    channel: Option<serenity::ChannelId>,
    #[description = "Quote the person's words in alerts (off: only that someone may be at risk)"]
    include_text: Option<bool>,
) -> Result<(), Error> {
    moderate(
        ctx,
        ModAction::SetAlerts {
            target: channel.map(|c| c.get().to_string()),
            include_text: include_text.unwrap_or(false),
        },
    )
    .await
}

/// Kind, private answers for what went wrong with a command.
pub async fn on_error(err: poise::FrameworkError<'_, Data, Error>) {
    let (ctx, text) = match err {
        poise::FrameworkError::MissingUserPermissions { ctx, .. } => (
            ctx,
            "Only members with the Manage Server permission can change how Kindred works here."
                .to_string(),
        ),
        poise::FrameworkError::CooldownHit {
            ctx,
            remaining_cooldown,
            ..
        } => (
            ctx,
            format!(
                "One moment please: try again in {} s.",
                remaining_cooldown.as_secs().max(1)
            ),
        ),
        poise::FrameworkError::GuildOnly { ctx, .. } => {
            (ctx, "That works in a server channel, not here.".to_string())
        }
        poise::FrameworkError::Command { ctx, error, .. } => {
            tracing::warn!(command = %ctx.command().name, error = %format!("{error:#}"), "a slash command failed");
            (
                ctx,
                "Sorry, something went wrong. Please try again in a moment.".to_string(),
            )
        }
        other => {
            tracing::warn!(error = %other, "Discord framework error");
            return;
        }
    };
    let reply = poise::CreateReply::default().content(text).ephemeral(true);
    if let Err(e) = ctx.send(reply).await {
        tracing::warn!(error = %e, "answering a failed command failed");
    }
}
